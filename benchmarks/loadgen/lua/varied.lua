-- Workload A-varied: browser-like GETs whose path, query, cookies and referer change on every
-- request (~700 bytes, 13 fields, the set and order Chrome sends for a navigation), so no
-- server can answer from a cache of the previous head.  The counter is per wrk thread.
local n = 0
local ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
  .. "Chrome/124.0.0.0 Safari/537.36"
local accept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
  .. "image/webp,*/*;q=0.8"

request = function()
  n = n + 1
  local path = string.format("/articles/%d/comments?page=%d&sort=new&q=term%d", n, n % 7, n)
  local cookie = string.format(
    "sessionid=%032x; csrftoken=%032x; _ga=GA1.1.%d.%d", n * 7919, n * 104729, n, n * 31)
  return "GET " .. path .. " HTTP/1.1\r\n"
    .. "Host: www.example.com\r\n"
    .. "Connection: keep-alive\r\n"
    .. 'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
    .. "sec-ch-ua-mobile: ?0\r\n"
    .. 'sec-ch-ua-platform: "Linux"\r\n'
    .. "Upgrade-Insecure-Requests: 1\r\n"
    .. "User-Agent: " .. ua .. "\r\n"
    .. "Accept: " .. accept .. "\r\n"
    .. "Sec-Fetch-Site: same-origin\r\n"
    .. string.format("Referer: https://www.example.com/articles/%d?from=%d\r\n", n - 1, n % 13)
    .. "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    .. "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    .. "Cookie: " .. cookie .. "\r\n"
    .. "\r\n"
end
