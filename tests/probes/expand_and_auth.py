# pbdiff probe (issue #9 items 7, 9): hidden relation expand/filter (Basalt deliberately stricter),
# legacy `coll(field)` expand, authRule 403, `fields` on auth answers, _superusers autodates.
def run(c):
    c.su("PATCH", "/api/collections/users", {"createRule": "", "listRule": "", "viewRule": ""})
    u = c.guest("POST", "/api/collections/users/records", {"email": "u0@example.com", "password": "12345678x", "passwordConfirm": "12345678x"})
    uid = u[1]["id"]
    posts = c.su("POST", "/api/collections", {"name": "posts", "listRule": "", "viewRule": "", "fields": [{"name": "t", "type": "text"}]})[1]["id"]
    c.su("POST", "/api/collections", {"name": "comments", "listRule": "", "viewRule": "", "fields": [
        {"name": "post", "type": "relation", "collectionId": posts, "maxSelect": 1},
        {"name": "hpost", "type": "relation", "collectionId": posts, "maxSelect": 1, "hidden": True},
        {"name": "body", "type": "text"}]})
    p = c.su("POST", "/api/collections/posts/records", {"t": "hello"})[1]["id"]
    cm = c.su("POST", "/api/collections/comments/records", {"post": p, "hpost": p, "body": "c1"})[1]["id"]
    c.guest("GET", f"/api/collections/posts/records/{p}?expand=comments(post)")
    c.guest("GET", f"/api/collections/posts/records/{p}?expand={'comments'}(post),comments_via_post")
    c.guest("GET", f"/api/collections/posts/records?expand=comments(post).post")
    c.guest("GET", f"/api/collections/posts/records/{p}?expand=nope(post)")
    c.guest("GET", f"/api/collections/posts/records/{p}?expand=comments(body)")
    c.guest("GET", f"/api/collections/comments/records/{cm}?expand=hpost")
    c.su("GET", f"/api/collections/comments/records/{cm}?expand=hpost")
    c.guest("GET", f"/api/collections/posts/records/{p}?expand=comments_via_hpost")
    c.guest("GET", f"/api/collections/comments/records?filter=hpost.t='hello'")
    c.su("GET", f"/api/collections/comments/records?filter=hpost.t='hello'&fields=id")
    # authRule 403
    c.su("PATCH", "/api/collections/users", {"authRule": "verified = true"})
    c.guest("POST", "/api/collections/users/auth-with-password", {"identity": "u0@example.com", "password": "12345678x"})
    c.guest("POST", "/api/collections/users/auth-with-password", {"identity": "u0@example.com", "password": "wrongwrong"})
    c.su("PATCH", "/api/collections/users", {"authRule": ""})
    c.guest("POST", "/api/collections/users/auth-with-password?fields=token", {"identity": "u0@example.com", "password": "12345678x"})
    c.guest("POST", "/api/collections/users/auth-with-password?fields=record.email,token", {"identity": "u0@example.com", "password": "12345678x"})
    c.guest("POST", "/api/collections/users/auth-with-password?fields=record", {"identity": "u0@example.com", "password": "12345678x"})
    c.guest("POST", "/api/collections/users/auth-with-password?fields=*", {"identity": "u0@example.com", "password": "12345678x"})
    c.guest("POST", "/api/collections/users/auth-with-password?fields=record.*&expand=", {"identity": "u0@example.com", "password": "12345678x"})
    t = c.guest("POST", "/api/collections/users/auth-with-password", {"identity": "u0@example.com", "password": "12345678x"})[1]["token"]
    c.call("POST", "/api/collections/users/auth-refresh?fields=token", {}, token=t)
    c.call("POST", "/api/collections/users/auth-refresh?fields=record.id", {}, token=t)
    c.su("GET", "/api/collections/_superusers")
    c.su("GET", "/api/collections/_superusers/records?fields=created,updated,email")
    c.call("POST", "/api/collections/_superusers/auth-with-password?fields=record.created", {"identity": "pbdiff@example.com", "password": "pbdiff-Passw0rd-1"})
