-- wrk script: POST pre-sealed SenseID contract bodies in turn; count answers by contract code.
--   wrk -c C -t T -d Ds --timeout 120s -s contract.lua URL -- PATH CONTENT_TYPE BODY_FILE...
-- The server answers every request with JSON carrying "code"; 1000 is success. wrk's own
-- counters see only HTTP status and socket errors, so contract codes are counted here.
-- With WRK_HONOUR_RETRY_AFTER=1 in the environment every 503 makes one later request of the
-- same wrk thread wait the Retry-After it carried, as a well-behaved client does (wrk's Lua
-- state is per thread, not per connection, so the wait lands on the thread's next request).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function slurp(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  return data
end

function init(args)
  path = args[1]
  content_type = args[2]
  bodies = {}
  for i = 3, #args do
    table.insert(bodies, slurp(args[i]))
  end
  next_body = math.random(#bodies)
  ok, failed, other = 0, 0, 0
  codes = {}
  waits = {}
end

-- defined only when asked for: wrk then sets a timer before every request
honour_retry_after = os.getenv("WRK_HONOUR_RETRY_AFTER") == "1"
if honour_retry_after then
  function delay()
    return table.remove(waits, 1) or 0
  end
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", path, {["Content-Type"] = content_type}, bodies[next_body])
end

function response(status, headers, body)
  if honour_retry_after and status == 503 then
    table.insert(waits, 1000 * (tonumber(headers["Retry-After"]) or 1))
  end
  local code = body:match('"code":%s*(%d+)')
  if code == "1000" then
    ok = ok + 1
  elseif code then
    failed = failed + 1
    codes[code] = (codes[code] or 0) + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = {ok = 0, failed = 0, other = 0}
  local codes_all = {}
  for _, thread in ipairs(threads) do
    for _, name in ipairs({"ok", "failed", "other"}) do
      totals[name] = totals[name] + thread:get(name)
    end
    for code, n in pairs(thread:get("codes")) do
      codes_all[code] = (codes_all[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(codes_all) do
    table.insert(parts, string.format('"%s": %d', code, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "ok": %d, "failed": %d, "unparsed": %d, ' ..
    '"codes": {%s}, "socket_errors": %d, "timeouts": %d, "non_2xx": %d, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, totals.ok, totals.failed, totals.other,
    table.concat(parts, ", "),
    errors.connect + errors.read + errors.write, errors.timeout, errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean))
end
