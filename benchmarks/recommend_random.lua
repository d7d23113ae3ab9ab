-- POST /api/recommend for a random (age, gender, occupation) of the whole request space;
-- with BENCH_EXPLAIN=true, asking for reasons too.
local genders = {"M", "F", "O"}
local occupations = {
  "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
  "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
  "retired", "salesman", "scientist", "student", "technician", "writer",
}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local explain = os.getenv("BENCH_EXPLAIN") == "true" and ', "explain": true' or ""

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

function request()
  local body = string.format('{"age": %d, "gender": "%s", "occupation": "%s"%s}',
    math.random(1, 120), genders[math.random(1, 3)], occupations[math.random(1, 21)], explain)
  return wrk.format(nil, nil, nil, body)
end
