-- POST /api/recommend for a random person of the whole request space who has scored 5 titles: drawn at random
-- (distinct) from BENCH_TITLES, one JSON-encoded title per line, each with a random score of 1 to 5.
local genders = {"M", "F", "O"}
local occupations = {
  "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
  "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
  "retired", "salesman", "scientist", "student", "technician", "writer",
}
local titles = {}
for line in os.getenv("BENCH_TITLES"):gmatch("[^\n]+") do
  titles[#titles + 1] = line
end
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
  local chosen, rated = {}, {}
  while #rated < 5 do
    local index = math.random(1, #titles)
    if not chosen[index] then
      chosen[index] = true
      rated[#rated + 1] = string.format('{"movie": %s, "score": %d}', titles[index], math.random(1, 5))
    end
  end
  local body = string.format('{"age": %d, "gender": "%s", "occupation": "%s", "rated": [%s]}',
    math.random(1, 120), genders[math.random(1, 3)], occupations[math.random(1, 21)], table.concat(rated, ", "))
  return wrk.format(nil, nil, nil, body)
end
