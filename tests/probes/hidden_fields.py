# pbdiff probe (issue #9 item 3): hidden fields written by guests and owners on create, update
# and sign-up; PocketBase 0.40.6 ignores them (and rules do not see them). tests/api/user_report.rs
def run(c):
    c.su("POST", "/api/collections", {"name": "posts", "createRule": "", "updateRule": "", "viewRule": "", "listRule": "",
        "fields": [{"name": "t", "type": "text"}, {"name": "secret", "type": "text", "hidden": True},
                   {"name": "n", "type": "number", "hidden": True}]})
    r = c.guest("POST", "/api/collections/posts/records", {"t": "x", "secret": "s1", "n": 5})
    rid = r[1]["id"]
    c.su("GET", f"/api/collections/posts/records/{rid}")
    c.guest("PATCH", f"/api/collections/posts/records/{rid}", {"t": "y", "secret": "s2", "n+": 3})
    c.su("GET", f"/api/collections/posts/records/{rid}")
    c.su("PATCH", f"/api/collections/posts/records/{rid}", {"secret": "s3"})
    c.guest("PATCH", f"/api/collections/posts/records/{rid}", {"n-": 1})
    c.su("GET", f"/api/collections/posts/records/{rid}")
    # auth collection sign-up with hidden field
    c.su("PATCH", "/api/collections/users", {"createRule": "", "fields": [{"name": "role", "type": "text", "hidden": True}]})
    c.su("GET", "/api/collections/users")
    u = c.guest("POST", "/api/collections/users/records", {"email": "u1@example.com", "password": "12345678x", "passwordConfirm": "12345678x", "role": "admin"})
    c.su("GET", f"/api/collections/users/records/{u[1].get('id')}")
    tok = c.guest("POST", "/api/collections/users/auth-with-password", {"identity": "u1@example.com", "password": "12345678x"})[1]["token"]
    c.call("PATCH", f"/api/collections/users/records/{u[1].get('id')}", {"role": "owner"}, token=tok)
    c.su("GET", f"/api/collections/users/records/{u[1].get('id')}")
    # hidden field in rule body
    c.su("PATCH", "/api/collections/posts", {"updateRule": "@request.body.secret:isset = false"})
    c.guest("PATCH", f"/api/collections/posts/records/{rid}", {"secret": "zz"})
    c.guest("GET", f"/api/collections/posts/records?filter=secret='s3'")
    c.guest("GET", f"/api/collections/posts/records?sort=secret")
