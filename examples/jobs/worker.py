#!/usr/bin/env python3
"""An external Basalt job worker in Python, standard library only.

    worker.py URL EMAIL PASSWORD [--queue QUEUE] [--exit-when-idle]

Signs in as a superuser, then claims jobs of the kinds below from QUEUE (default `examples`),
runs them, and reports each outcome; a job that raises is failed with the error (the queue
retries it with backoff, and buries it after its attempts). Long jobs would send
`POST /api/jobs/{id}/heartbeat {lease}` to keep their lease.

Kinds: `sum` ({"numbers": [...]} -> {"sum": n}) and `explode` (always fails).
"""

import json
import sys
import time
import urllib.error
import urllib.request


def call(base, path, body, token=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None


def handle(job):
    if job["kind"] == "sum":
        return {"sum": sum(job["payload"].get("numbers", []))}
    if job["kind"] == "explode":
        raise RuntimeError("exploded on purpose")
    raise RuntimeError(f"no handler for {job['kind']}")


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    base, email, password = args[0].rstrip("/"), args[1], args[2]
    queue = args[args.index("--queue") + 1] if "--queue" in args else "examples"
    exit_when_idle = "--exit-when-idle" in args
    token = call(base, "/api/collections/_superusers/auth-with-password",
                 {"identity": email, "password": password})["token"]
    done = 0
    while True:
        claimed = call(base, "/api/jobs/claim",
                       {"queue": queue, "kinds": ["sum", "explode"], "max": 5, "lease": 30}, token)
        if not claimed["items"]:
            if exit_when_idle:
                print(f"worker.py: {done} jobs handled; the queue is idle")
                return
            time.sleep(1)
            continue
        for job in claimed["items"]:
            try:
                result = handle(job)
            except Exception as e:  # noqa: BLE001 (any failure is reported to the queue)
                call(base, f"/api/jobs/{job['id']}/fail", {"lease": job["lease"], "error": str(e)}, token)
            else:
                call(base, f"/api/jobs/{job['id']}/complete", {"lease": job["lease"], "result": result}, token)
            done += 1


if __name__ == "__main__":
    main()
