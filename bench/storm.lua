-- wrk script of the storm benchmark (bench/storm.py): every request its own Idempotency-Key;
-- for /v2/enqueue the body's DEDUP is a new dedup key each ("new"), one of 20 ("repeat"), or
-- left alone ("same"). Arguments: mode, bearer token, run id, body file.
local counter = 0
local created = 0

function setup(thread)
  created = created + 1
  thread:set("tid", created)
end

function init(args)
  mode, token, run = args[1], args[2], args[3]
  local f = assert(io.open(args[4], "r"))
  template = f:read("*a")
  f:close()
end

function request()
  counter = counter + 1
  local id = run .. "-" .. tid .. "-" .. counter
  local body = template
  if mode == "new" then
    body = (string.gsub(template, "DEDUP", id))
  elseif mode == "repeat" then
    body = (string.gsub(template, "DEDUP", run .. "-k" .. (counter % 20)))
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer " .. token,
                                  ["Idempotency-Key"] = id}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
