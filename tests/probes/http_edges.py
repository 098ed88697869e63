"""HTTP edge behaviour (issue: bodies, NUL in query strings, paging overflow, routing/CORS).

Run: python3 ../shared/tools/pbdiff.py target/release/basalt tests/probes/http_edges.py [--all]

Expected differences (deliberate, see docs/architecture.md "Known differences"):
- NUL in a query parameter: Basalt always answers 400 naming the parameter; PocketBase answers a
  bare 400 for some parameters and ignores the NUL (or the parameter) in others.
- page=<i64 max> (and 2^62 with perPage=4): PocketBase's offset overflows and it returns the
  first page; Basalt returns an empty page.
- page/perPage not an integer: both 400; Basalt's message names the parameter.
- 32 MiB + 1 declared on a records create: PocketBase's limit there is larger (file fields), so it
  reads on and answers 400 "Unsupported Content-Type."; Basalt has no files and answers 413.
- /api/collections lists PocketBase's system collections (_mfas, _otps, ...) that Basalt lacks.
"""
import json
import socket
import http.client
from urllib.parse import urlsplit

I64_MAX = 9223372036854775807


def _hostport(c):
    u = urlsplit(c.base)
    return u.hostname, u.port


def _raw(c, data, chunks=None, timeout=10):
    """Sends raw bytes (then optional chunks, ignoring a closed pipe); returns (status, headers, body)."""
    s = socket.create_connection(_hostport(c))
    s.settimeout(timeout)
    s.sendall(data)
    try:
        for ch in chunks or []:
            s.sendall(ch)
    except OSError:
        pass  # the server closed early, which is the point
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        return None, {}, "<no answer, no close>"
    except OSError:
        pass
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return None, {}, out[:200].decode(errors="replace")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    try:
        body = json.loads(body) if body else None
    except ValueError:
        body = body[:200].decode(errors="replace")
    return status, hdrs, body


def _log(c, label, status, value):
    c.log.append((label, status, value))


def _headers(c, method, path, headers, keep):
    conn = http.client.HTTPConnection(*_hostport(c), timeout=10)
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    r.read()
    got = {k: sorted(r.headers.get_all(k) or []) for k in keep}
    conn.close()
    return r.status, got


def run(c):
    c.su("POST", "/api/collections", {"name": "posts", "listRule": "", "viewRule": "",
                                      "createRule": "", "updateRule": "",
                                      "fields": [{"name": "title", "type": "text"}]})
    post = c.su("POST", "/api/collections/posts/records", {"title": "a"})[1]["id"]

    # 5. Bodies over the limit (32 MiB).
    for path in ["/api/collections/users/records", "/api/collections", "/api/health"]:
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 1073741824\r\n\r\n{\"a\":\"").encode()
        st, h, body = _raw(c, head)
        _log(c, f"RAW POST {path} Content-Length 1GiB", st,
             {"connection": h.get("connection"), "body": body})
    head = (b"POST /api/collections/users/records HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 33554433\r\n\r\n")
    st, h, body = _raw(c, head, timeout=5)
    _log(c, "RAW POST records Content-Length 32MiB+1", st, {"body": body})
    head = (b"POST /api/collections/users/records HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"6\r\n{\"a\":\"\r\n")
    mib = b"x" * (1 << 20)
    chunks = [b"100000\r\n" + mib + b"\r\n"] * 40 + [b"2\r\n\"}\r\n0\r\n\r\n"]
    st, h, body = _raw(c, head, chunks)
    _log(c, "RAW POST records chunked 40MiB", st, {"connection": h.get("connection"), "body": body})

    # 8. Paging at the limits of i64.
    for path in ["/api/collections", "/api/collections/posts/records"]:
        for q in [f"page={I64_MAX}", f"page={I64_MAX}&perPage=1000&skipTotal=1",
                  f"page={I64_MAX + 1}", f"page={-I64_MAX - 1}", "page=x", "perPage=x",
                  "page=1.5", "perPage=0", "perPage=-1", "perPage=5000",
                  f"page={1 << 62}&perPage=4"]:
            c.su("GET", f"{path}?{q}&fields=id")

    # 9. Unknown routes, wrong methods, CORS.
    for m, p in [("GET", "/api/nope"), ("GET", "/nope"), ("POST", "/api/nope"),
                 ("PATCH", "/api/nope"), ("DELETE", "/api/nope"), ("PUT", "/api/nope"),
                 ("DELETE", "/api/health"), ("PUT", "/api/collections"), ("TRACE", "/api/health"),
                 ("GET", "/api/collections/users/auth-with-password"),
                 ("PATCH", "/api/collections/users/auth-with-password"),
                 ("POST", "/api/collections/users/truncate"),
                 ("HEAD", "/api/nope")]:
        c.su(m, p)
    keep = ["access-control-allow-origin", "access-control-allow-methods",
            "access-control-allow-headers", "vary", "x-frame-options", "allow"]
    pre = {"Origin": "http://example.com", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type, authorization"}
    for p in ["/api/collections", "/api/collections/posts/records", "/api/nope"]:
        _log(c, f"OPTIONS {p} preflight headers", *_headers(c, "OPTIONS", p, pre, keep))
    _log(c, "OPTIONS /api/health no Origin", *_headers(c, "OPTIONS", "/api/health", {}, keep))
    _log(c, "OPTIONS /api/health Origin only",
         *_headers(c, "OPTIONS", "/api/health", {"Origin": "http://x"}, keep))
    _log(c, "GET /api/health with Origin",
         *_headers(c, "GET", "/api/health", {"Origin": "http://x"}, keep))
    _log(c, "GET /api/health no Origin", *_headers(c, "GET", "/api/health", {}, keep))

    # 6 (last: PocketBase accepts some of these writes, Basalt refuses them all).
    for name in ["filter", "sort", "expand", "fields", "page", "perPage", "skipTotal", "other"]:
        c.su("GET", f"/api/collections/posts/records?{name}=id%00x")
        c.su("GET", f"/api/collections/posts/records/{post}?{name}=id%00x")
        c.su("GET", f"/api/collections?{name}=id%00x")
    c.su("GET", "/api/collections/posts/records?fields=id%00,title")
    c.su("POST", "/api/collections/posts/records?fields=id%00,title", {"title": "b"})
    c.su("PATCH", f"/api/collections/posts/records/{post}?expand=%00", {"title": "c"})
    c.guest("POST", "/api/collections/_superusers/auth-with-password?fields=%00",
            {"identity": "nobody@example.com", "password": "x"})
