-- wrk script for every HTTP benchmark (bench/harness.py): POSTs request bodies in turn.
--
--   wrk ... -s bench/cycle.lua URL -- BODIES [HEADER VALUES]
--
-- BODIES is a file of request bodies, one a line; they are sent in turn, from the first one
-- again after the last. With HEADER and VALUES (a file of header values, one a line), request
-- n carries HEADER: value n, beside body n (counting round the bodies): for values that may be
-- used once only, such as DPoP proofs. The requests are formatted once, before the run; after
-- the last value the first request comes again, which a server that refuses replays answers
-- with an error, and the harness fails the run.
-- Static headers come from wrk's -H options.

wrk.method = "POST"

local requests = {}
local index = 0

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  return out
end

function init(args)
  local bodies = lines(args[1])
  local header = args[2]
  if header == nil then
    for n, body in ipairs(bodies) do
      requests[n] = wrk.format(nil, nil, nil, body)
    end
    return
  end
  for n, value in ipairs(lines(args[3])) do
    local headers = {}
    for name, static in pairs(wrk.headers) do
      headers[name] = static
    end
    headers[header] = value
    requests[n] = wrk.format(nil, nil, headers, bodies[(n - 1) % #bodies + 1])
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end
