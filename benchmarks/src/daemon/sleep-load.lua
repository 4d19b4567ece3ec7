-- The jtbd5-e2e load for wrk (https://github.com/wg/wrk, Debian package `wrk`): POSTs
-- `sleep` operations to /v1/operations at a fixed rate, each on one of `subjects`
-- subjects in turn, and prints one JSON line (WRK_RESULT) with what happened.
--
--   wrk -t1 -c256 -d60s -s sleep-load.lua URL -- RATE TOKEN HANDLER_MS SUBJECTS
--
-- Rate: wrk sends a connection's next request after its response and `delay()` ms.
-- Each delay() takes the next slot of a fixed schedule (start + k / RATE) and waits
-- until it is due, at once when it is overdue: so the thread keeps the schedule as long
-- as some connection is free, and catches up in a burst after a stall. A connection's
-- first request goes at connect time (wrk's own behaviour), outside the schedule.
-- TOKEN "-" sends no Authorization header (the bare Fastify baseline).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } unrdf_timespec;
int clock_gettime(int clock_id, unrdf_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("unrdf_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local rate, headers, handler_ms, subjects
local start, slot, counter = nil, 0, 0
-- Read by done() through thread:get().
non202 = 0

function init(args)
  rate = tonumber(args[1])
  headers = { ["Content-Type"] = "application/json" }
  if args[2] ~= "-" then headers["Authorization"] = "Bearer " .. args[2] end
  handler_ms = tonumber(args[3])
  subjects = tonumber(args[4])
end

function delay()
  if start == nil then start = now_ms() end
  local due = start + slot * 1000 / rate
  slot = slot + 1
  local wait = due - now_ms()
  if wait <= 0 then return 0 end
  return math.floor(wait)
end

function request()
  counter = counter + 1
  local body = string.format('{"type":"sleep","subject":"urn:unrdf:bench:s%d","input":{"ms":%d}}',
    counter % subjects, handler_ms)
  return wrk.format("POST", "/v1/operations", headers, body)
end

function response(status, _headers, _body)
  if status ~= 202 then non202 = non202 + 1 end
end

function done(summary, latency, _requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("non202") or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"non202":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
