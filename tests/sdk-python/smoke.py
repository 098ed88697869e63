"""Smoke test with the Python SDK (PyPI `pocketbase`, pinned in requirements.txt).

Usage: python3 tests/sdk-python/smoke.py BASALT_BINARY [extra server args...]
Starts the binary on a free loopback port with a temporary data dir, runs a CRUD/filter/auth/files
round through the SDK and the mail flows (verification, password reset, email change) with mail
read from an aiosmtpd server started here (it passes against PocketBase 0.40.6 too), and exits
non-zero on the first failure. Stops the servers on exit.
"""
import email as email_lib
import email.policy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from pocketbase import PocketBase
from pocketbase.client import FileUpload

EMAIL, PASSWORD = "py-root@example.com", "py-root-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary, extra = sys.argv[1], sys.argv[2:]
    data = tempfile.mkdtemp(prefix="basalt-pysdk-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    subprocess.run([binary, "superuser", "upsert", EMAIL, PASSWORD, "--dir", data, *extra],
                   check=True, stdout=subprocess.DEVNULL)
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen([binary, "serve", "--http", f"127.0.0.1:{port}", "--dir", data, *extra],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not become healthy")
            time.sleep(0.05)
        run(url)
        print("python SDK smoke: ok")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def run(url):
    pb = PocketBase(url)
    pb.collection("_superusers").auth_with_password(EMAIL, PASSWORD)
    check(bool(pb.auth_store.token), "superuser auth")
    name = "py_notes_" + os.urandom(3).hex()
    pb.collections.create({
        "name": name, "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [{"name": "title", "type": "text", "required": True}, {"name": "n", "type": "number"}],
    })
    for i in range(5):
        pb.collection(name).create({"title": f"t{i}", "n": i})
    page = pb.collection(name).get_list(1, 2, {"filter": "n >= 1", "sort": "-n"})
    check(page.total_items == 4 and [r.title for r in page.items] == ["t4", "t3"], "filtered, sorted page")
    check(len(pb.collection(name).get_full_list(batch=2)) == 5, "full list in batches of 2")
    first = pb.collection(name).get_first_list_item('title = "t3"')
    check(first.n == 3, "first list item")
    check(pb.collection(name).update(first.id, {"n+": 10}).n == 13, "number modifier")
    pb.collection(name).delete(first.id)
    try:
        pb.collection(name).get_one(first.id)
        check(False, "deleted record is gone")
    except Exception as e:  # the SDK raises ClientResponseError
        check(getattr(e, "status", None) == 404, f"404 after delete, got {e}")
    try:
        pb.collection(name).create({"n": 1})
        check(False, "required title")
    except Exception as e:
        data = getattr(e, "data", {}) or {}
        check(getattr(e, "status", None) == 400 and "title" in json.dumps(data), f"400 on title, got {e}")
    email = f"py-{os.urandom(3).hex()}@example.com"
    user = pb.collection("users").create({"email": email, "password": "password123", "passwordConfirm": "password123"})
    other = PocketBase(url)
    auth = other.collection("users").auth_with_password(email, "password123")
    check(auth.record.id == user.id and other.auth_store.token, "user login")
    refreshed = other.collection("users").auth_refresh()
    check(refreshed.record.id == user.id, "auth refresh")
    files(pb, other, user)
    mail_flows(pb, url)


def mail_flows(pb, url):
    """Verification, password reset and email change, each token taken from the mail."""
    maildir = tempfile.mkdtemp(prefix="basalt-pysdk-mail-")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, sub))
    port = free_port()
    smtp = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Mailbox", maildir], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("aiosmtpd did not start (pip install -r tests/smtp/requirements.txt)")
                time.sleep(0.05)
        pb.settings.update({"meta": {"senderName": "Py", "senderAddress": "py@app.test", "appURL": "http://py.test"},
                            "smtp": {"enabled": True, "host": "127.0.0.1", "port": port}})

        def token_for(to, what):
            """The token of the newest `confirm-<what>` link mailed to `to`."""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for name in sorted(os.listdir(os.path.join(maildir, "new")), reverse=True):
                    with open(os.path.join(maildir, "new", name), "rb") as f:
                        msg = email_lib.message_from_binary_file(f, policy=email.policy.default)
                    if to not in str(msg["To"]):
                        continue
                    for part in msg.walk():
                        if part.get_content_maintype() == "text":
                            m = re.search(rf"/confirm-{what}/([A-Za-z0-9_.-]+)", part.get_content())
                            if m:
                                return m.group(1)
                time.sleep(0.1)
            raise SystemExit(f"FAILED: no confirm-{what} mail to {to}")

        guest = PocketBase(url)
        address = f"py-flow-{os.urandom(3).hex()}@example.com"
        user = guest.collection("users").create(
            {"email": address, "password": "password123", "passwordConfirm": "password123"})
        guest.collection("users").request_verification(address)
        guest.collection("users").confirm_verification(token_for(address, "verification"))
        me = PocketBase(url)
        me.collection("users").auth_with_password(address, "password123")
        check(me.collection("users").get_one(user.id).verified, "verified by the mailed token")

        guest.collection("users").request_password_reset(address)
        reset = token_for(address, "password-reset")
        guest.collection("users").confirm_password_reset(reset, "newpass1234", "newpass1234")
        try:
            guest.collection("users").confirm_password_reset(reset, "again12345", "again12345")
            check(False, "a reset token works once")
        except Exception as e:
            check(getattr(e, "status", None) == 400, f"400 on a used reset token, got {e}")
        me = PocketBase(url)
        me.collection("users").auth_with_password(address, "newpass1234")

        moved = f"py-moved-{os.urandom(3).hex()}@example.com"
        me.collection("users").request_email_change(moved)
        me.collection("users").confirm_email_change(token_for(moved, "email-change"), "newpass1234")
        again = PocketBase(url)
        check(again.collection("users").auth_with_password(moved, "newpass1234").record.id == user.id,
              "login with the new address")
    finally:
        pb.settings.update({"smtp": {"enabled": False}})
        smtp.terminate()
        smtp.wait(10)
        shutil.rmtree(maildir, ignore_errors=True)


def files(pb, owner, user):
    """File fields: upload (multipart), append, download URL, validation, protected + token."""
    name = "py_files_" + os.urandom(3).hex()
    pb.collections.create({
        "name": name, "listRule": "", "viewRule": "owner = @request.auth.id", "createRule": "",
        "updateRule": "",
        "fields": [{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                   {"name": "docs", "type": "file", "maxSelect": 2, "maxSize": 100},
                   {"name": "secret", "type": "file", "maxSelect": 1, "protected": True}],
    })
    rec = owner.collection(name).create({
        "owner": user.id,
        "docs": FileUpload(("a.txt", b"alpha", "text/plain")),
        "secret": FileUpload(("s.txt", b"top secret", "text/plain")),
    })
    check(len(rec.docs) == 1 and rec.docs[0].endswith(".txt"), f"uploaded: {rec.docs}")
    rec = owner.collection(name).update(rec.id, {"docs+": FileUpload(("b.txt", b"beta", "text/plain"))})
    check(len(rec.docs) == 2, "appended")
    try:
        owner.collection(name).update(rec.id, {"docs+": FileUpload(("c.txt", b"c", "text/plain"))})
        check(False, "a third file is refused")
    except Exception as e:
        check(getattr(e, "status", None) == 400, f"400 on a third file, got {e}")

    def fetch(u):
        try:
            with urllib.request.urlopen(u, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, body = fetch(owner.files.get_url(rec, rec.docs[1]))
    check((status, body) == (200, b"beta"), f"download: {status} {body[:40]!r}")
    status, _ = fetch(owner.files.get_url(rec, rec.secret))
    check(status == 404, f"protected without token: {status}")
    token = owner.files.get_token()
    status, body = fetch(owner.files.get_url(rec, rec.secret, {"token": token}))
    check((status, body) == (200, b"top secret"), f"protected with token: {status}")


if __name__ == "__main__":
    main()
