#!/usr/bin/env bash
# Runs the SDK end-to-end suite against a PocketBase-compatible server binary.
#
#   tests/sdk/run.sh BINARY [test files...]   (files relative to tests/sdk; default: *.test.mjs)
#
# BINARY must speak PocketBase's CLI:
#   BINARY superuser upsert EMAIL PASS --dir DIR
#   BINARY serve --http 127.0.0.1:PORT --dir DIR
# One server is started for the whole suite (each test file uses its own
# uniquely named collections); it is stopped and its data dir removed on exit.
# Environment knobs: SDK_SERVER_ARGS (extra server flags), SDK_DATA_DIR, SDK_TEST_CONCURRENCY (files run in parallel, default 2),
# SDK_READY_TIMEOUT_MS (default 30000), SDK_TEST_TIMEOUT_MS (per test, default 60000).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BINARY [test files...]" >&2
  exit 2
fi

BIN_ARG=$1
shift
if [[ "$BIN_ARG" == */* ]]; then
  BIN=$(cd "$(dirname "$BIN_ARG")" && pwd)/$(basename "$BIN_ARG")
else
  BIN=$(command -v "$BIN_ARG" || true)
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "run.sh: server binary '$BIN_ARG' not found or not executable" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/basalt-sdk.XXXXXX")
SERVER_PID=""

cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$TMP/server.log" ]; then
    echo "---- last lines of the server log ----" >&2
    tail -n 40 "$TMP/server.log" >&2 || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Dependencies: install from the lockfile only when node_modules is missing.
if [ ! -d "$HERE/node_modules" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Free port: bind port 0 on loopback, read it back, release it.
PORT=$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
')

export BASALT_URL="http://127.0.0.1:${PORT}"
# The binary itself, for tests that start (and restart) servers of their own, and the extra
# flags (SDK_SERVER_ARGS) that put them on the same database.
export BASALT_BIN="$BIN"
export BASALT_SERVER_ARGS="${SDK_SERVER_ARGS:-}"
export BASALT_SU_EMAIL="su_$(node -e 'console.log(require("crypto").randomBytes(5).toString("hex"))')@example.com"
export BASALT_SU_PASSWORD="su-password-1234567"

# SDK_DATA_DIR: use (and keep) this data directory instead of a throw-away one, e.g. to migrate
# the suite's SQLite data to PostgreSQL afterwards and run the suite again on the result.
DATA="${SDK_DATA_DIR:-$TMP/data}"
# SDK_SERVER_ARGS: extra flags for both commands, e.g. "--db postgres://…" for Basalt on Postgres.
read -r -a EXTRA_ARGS <<< "${SDK_SERVER_ARGS:-}"
"$BIN" superuser upsert "$BASALT_SU_EMAIL" "$BASALT_SU_PASSWORD" --dir "$DATA" "${EXTRA_ARGS[@]}" >"$TMP/upsert.log" 2>&1 || {
  echo "run.sh: 'superuser upsert' failed:" >&2
  cat "$TMP/upsert.log" >&2
  exit 1
}

"$BIN" serve --http "127.0.0.1:${PORT}" --dir "$DATA" "${EXTRA_ARGS[@]}" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

# Readiness poll: GET /api/health must answer 200; give up if the server exits.
SERVER_PID="$SERVER_PID" node -e '
  const url = process.env.BASALT_URL + "/api/health";
  const pid = Number(process.env.SERVER_PID);
  const deadline = Date.now() + Number(process.env.SDK_READY_TIMEOUT_MS || 30000);
  (async () => {
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      try { process.kill(pid, 0); } catch { console.error("run.sh: server exited before becoming ready"); process.exit(1); }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) process.exit(0);
      } catch {}
      if (Date.now() > deadline) { console.error("run.sh: server not ready at " + url); process.exit(1); }
      await new Promise((r) => setTimeout(r, delay));
    }
  })();
'

cd "$HERE"
if [ $# -gt 0 ]; then
  FILES=("$@")
else
  FILES=(*.test.mjs)
fi

set +e
node --test \
  --test-concurrency="${SDK_TEST_CONCURRENCY:-2}" \
  --test-timeout="${SDK_TEST_TIMEOUT_MS:-60000}" \
  "${FILES[@]}"
RC=$?
set -e
exit "$RC"
