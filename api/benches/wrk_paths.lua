-- wrk script for the API load benchmark (docs/benchmarks.md, "API"): each request GETs a
-- path picked at random from the file named by the PATHS environment variable (one path per
-- line), and the summary prints requests/s and the p50/p95/p99 latencies in milliseconds.
--
--   PATHS=/tmp/detail.paths wrk -t2 -c16 -d20s -s api/benches/wrk_paths.lua http://127.0.0.1:8080

local paths = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  local file = assert(io.open(os.getenv("PATHS"), "r"), "set PATHS to a file of paths")
  for line in file:lines() do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  file:close()
  math.randomseed(os.time() * 100 + (seed or 0))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "requests %d, %.0f req/s, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms, errors %d\n",
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, errors))
end
