# pbdiff probe (issue #9 item 4): @request.body rules against every modifier spelling (f, f+, +f, f-)
# on create and update. tests/api/user_report.rs::body_rules_see_modifier_keys
def run(c):
    c.su("PATCH", "/api/collections/users", {"createRule": "", "listRule": "", "viewRule": ""})
    ids, toks = [], []
    for i in range(2):
        u = c.guest("POST", "/api/collections/users/records", {"email": f"u{i}@example.com", "password": "12345678x", "passwordConfirm": "12345678x"})
        ids.append(u[1]["id"])
        toks.append(c.guest("POST", "/api/collections/users/auth-with-password", {"identity": f"u{i}@example.com", "password": "12345678x"})[1]["token"])
    users = c.su("GET", "/api/collections/users")[1]["id"]
    c.su("POST", "/api/collections", {"name": "docs", "listRule": "", "viewRule": "",
        "createRule": "@request.body.owner = @request.auth.id",
        "updateRule": "owner = @request.auth.id && (@request.body.owner:isset = false || @request.body.owner = @request.auth.id)",
        "fields": [{"name": "owner", "type": "relation", "collectionId": users, "maxSelect": 1},
                   {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                   {"name": "n", "type": "number"}]})
    d = c.call("POST", "/api/collections/docs/records", {"owner": ids[0]}, token=toks[0])
    did = d[1]["id"]
    for key in ["owner", "owner+", "+owner", "owner-"]:
        c.call("PATCH", f"/api/collections/docs/records/{did}", {key: ids[1]}, token=toks[0])
        c.su("GET", f"/api/collections/docs/records/{did}")
    c.call("PATCH", f"/api/collections/docs/records/{did}", {"owner-": ids[0]}, token=toks[0])
    c.su("GET", f"/api/collections/docs/records/{did}")
    c.su("PATCH", f"/api/collections/docs/records/{did}", {"owner": ids[0]})
    # create with modifier forms
    for key in ["owner+", "+owner", "owner-"]:
        c.call("POST", "/api/collections/docs/records", {key: ids[0]}, token=toks[0])
        c.call("POST", "/api/collections/docs/records", {key: ids[1]}, token=toks[0])
    # :length, :each, :changed on multi and number
    c.su("PATCH", "/api/collections/docs", {"updateRule": "@request.body.tags:length <= 2 && @request.body.tags:each != 'c' && @request.body.n:changed = false"})
    for body in [{"tags+": "a"}, {"tags+": ["a", "b"]}, {"tags+": ["a", "b", "c"]}, {"+tags": "c"}, {"tags-": "a"},
                 {"n+": 1}, {"n+": 0}, {"n-": 5}, {"n": 0}, {"tags": ["a"]}, {"tags+": "b", "tags": ["a"]}]:
        c.call("PATCH", f"/api/collections/docs/records/{did}", body, token=toks[0])
        c.su("GET", f"/api/collections/docs/records/{did}")
    c.su("PATCH", "/api/collections/docs", {"updateRule": "@request.body.n:isset = true && @request.body.n > 3"})
    for body in [{"n+": 5}, {"n+": 1}, {"n-": 100}, {"+n": 10}]:
        c.call("PATCH", f"/api/collections/docs/records/{did}", body, token=toks[0])
        c.su("GET", f"/api/collections/docs/records/{did}")
