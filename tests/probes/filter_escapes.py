"""pbdiff probe (issue #9 item 1): backslash escapes in filter string literals.

Stores texts with quotes, backslashes and control chars, then lists with filters written in both
quote styles. Deliberate differences (docs/architecture.md): Basalt decodes `\\b`, `\\f` and
`\\uXXXX` (so the JS SDK's `pb.filter`, which uses JSON.stringify, round-trips any string), and its
400 messages say what is wrong. Each call's answer is the list of stored texts that matched.
Conformance table with the same cases: tests/api/filter_escapes.rs.
"""
import urllib.parse

TEXTS = ["it's \"quoted\" \\ back", "C:\\new", "C:\nnew"[0:2]+"\new", "a\\\"b", "tab\there", "a\\b", "a\\qb", "aqb", "A", "\u00e9", "x\\", "a'b", "a\"b", "a\\'b", "a\rb", "a\\nb", "a\x08b", "a\x0cb", "a\x0bb", "a\x07b", "a/b", "a\\/b", "\U0001F600", "a\x00b"[0:1]+"0b", "a\\u0041", "\\", "\\\\", "a$b", "a\\bb", "abb", "u0041", "\\u0041", "a\\u0041", "a\\$b", "\\0", "\\x41", "a\\ab", "a\\fb", "a\\vb", "\\U0001F600", "\\101", "a\\u004", "a\\u004g", "\\uD83D\\uDE00"]
FILTERS = ['t = "it\'s \\"quoted\\" \\\\ back"', 't = "C:\\\\new"', "t = 'C:\\new'", 't = "C:\\new"', 't = "a\\\\\\"b"', 't = "tab\\there"', "t = 'tab\\there'", "t = 'a\\\\b'", 't = "a\\\\b"', "t = 'a\\qb'", 't = "a\\qb"', 't = "\\u0041"', "t = '\\u0041'", 't = "\\u00e9"', 't = "\\U0001F600"', 't = "\\uD83D\\uDE00"', 't = "x\\\\"', 't = "x\\"', "t = 'x\\'", 't = "a\\\'b"', "t = 'a\\'b'", 't = \'a\\"b\'', 't = "a\\"b"', 't = "a\\rb"', 't = "a\\bb"', 't = "a\\fb"', 't = "a\\vb"', 't = "a\\ab"', 't = "a\\/b"', 't = "\\x41"', 't = "\\101"', 't = "\\\\"', "t = '\\\\'", 't = "\\\\\\\\"', 't = "a\\$b"', 't = "a\\u004"', 't = "a\\u004g"', 't = "\\0"', 't = "a\\', 't = "a\\u0041"', 't ~ "a\\%"', "t = 'it\\'s'", "t = 'a\\\\\\'b'", 't = "a\\u0001b"']


def run(c):
    c.su("POST", "/api/collections", {"name": "esc", "fields": [{"name": "t", "type": "text"}]})
    for t in TEXTS:
        c.su("POST", "/api/collections/esc/records", {"t": t}, record=False)
    for f in FILTERS:
        s, r = c.su("GET", "/api/collections/esc/records?perPage=100&filter=" + urllib.parse.quote(f),
                    record=False)
        got = sorted(i["t"] for i in r["items"]) if s == 200 else r.get("message")
        c.log.append((f"filter {f}", s, got))
