-- POST /api/recommend for a random (age, gender, occupation) of the whole request space.
local genders = {"M", "F", "O"}
local occupations = {
  "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
  "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
  "retired", "salesman", "scientist", "student", "technician", "writer",
}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

function request()
  local body = string.format('{"age": %d, "gender": "%s", "occupation": "%s"}',
    math.random(1, 120), genders[math.random(1, 3)], occupations[math.random(1, 21)])
  return wrk.format(nil, nil, nil, body)
end
