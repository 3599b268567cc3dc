-- Workload A-close-10: a new connection per request, HTTP/1.0 without keep-alive, as nginx
-- sends requests upstream by default (proxy_http_version 1.0, no Connection header).  The
-- server closes after each response; wrk reconnects.
local req = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"

request = function()
  return req
end
