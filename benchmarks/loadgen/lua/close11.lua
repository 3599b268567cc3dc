-- Workload A-close-11: a new connection per request, HTTP/1.1 with "Connection: close".
local req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
  .. "Connection: close\r\n\r\n"

request = function()
  return req
end
