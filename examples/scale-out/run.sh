#!/usr/bin/env bash
# Three Basalt instances on one PostgreSQL database behind nginx (round-robin, keepalive).
#
#   examples/scale-out/run.sh --db postgres://user@host:5432/DB [--bin path/to/basalt] [--port N]
#
# Starts the instances on free loopback ports (each with its own --dir), fills nginx.conf into a
# private temp directory, starts nginx on 127.0.0.1:PORT (default 8090), waits until
# /api/health answers through it and prints "Ready at http://127.0.0.1:PORT". Runs until
# Ctrl-C / SIGTERM (or until nginx or an instance exits), then stops nginx and the instances and
# removes the temp directory. Progress goes to stderr; stdout has one line per process and the
# "Ready at" line.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # `&` in a replacement stays literal (bash 5.2)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTANCES="${BASALT_INSTANCES:-3}"  # the scaling benchmark varies it
db="${BASALT_DB:-}"
bin=""
port=8090

usage() {
  echo "usage: $(sed -n '4s/^#  *//p' "${BASH_SOURCE[0]}")"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --db) db="${2:?--db needs a value}"; shift 2 ;;
    --db=*) db="${1#*=}"; shift ;;
    --bin) bin="${2:?--bin needs a value}"; shift 2 ;;
    --bin=*) bin="${1#*=}"; shift ;;
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    --port=*) port="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$db" in
  postgres://* | postgresql://*) ;;
  *) echo "--db postgres://… is required (or BASALT_DB)" >&2; usage >&2; exit 2 ;;
esac
case "$port" in
  '' | *[!0-9]*) echo "--port must be a number" >&2; exit 2 ;;
esac
if [ -z "$bin" ]; then
  bin="$(command -v basalt || true)"
  [ -n "$bin" ] || bin="$here/../../target/release/basalt"
fi
[ -x "$bin" ] || { echo "no basalt binary at '$bin' (pass --bin)" >&2; exit 2; }

# nginx (Debian puts it in /usr/sbin) and curl for the readiness check.
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v nginx >/dev/null || ! command -v curl >/dev/null; then
  echo "installing nginx and curl…" >&2
  { apt-get install -y nginx curl || { apt-get update && apt-get install -y nginx curl; }; } >&2
fi

prefix="$(mktemp -d "${TMPDIR:-/tmp}/basalt-scale-out.XXXXXX")"
# nginx's workers run as `nobody` when started by root: they must reach the temp paths.
chmod 755 "$prefix"
mkdir -p "$prefix/tmp"
pids=()
nginx_pid=""

# Stops nginx first (no new requests), then the instances (SIGTERM: in-flight requests finish).
# Waits up to 15 s for each before SIGKILL.
# shellcheck disable=SC2317 # stop and cleanup run from the traps
stop() {
  local pid deadline
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 15))
  for pid in "$@"; do
    # bash reaps its children as they exit, so `kill -0` fails once one is gone.
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# shellcheck disable=SC2317
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  echo "stopping nginx and the Basalt instances…" >&2
  [ -z "$nginx_pid" ] || stop "$nginx_pid"
  [ "${#pids[@]}" -eq 0 ] || stop "${pids[@]}"
  rm -rf "$prefix"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the last lines of a log on failure.
show_log() {
  echo "--- $1" >&2
  tail -n 20 "$1" >&2 || true
}

# Waits for an instance's "Server started at http://ADDR" line; prints ADDR.
instance_addr() {
  local out="$1" pid="$2" log="$3" line deadline=$((SECONDS + 30))
  while :; do
    line="$(grep -m1 '^Server started at http://' "$out" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      line="${line#Server started at http://}"
      echo "${line%%[[:space:]]*}"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "basalt (pid $pid) exited during startup" >&2
      show_log "$log"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "basalt (pid $pid) printed no startup line within 30 s" >&2
      show_log "$log"
      return 1
    fi
    sleep 0.05
  done
}

# The URL goes through the environment, not argv: it may hold a password (`ps` shows argv).
for i in $(seq 1 "$INSTANCES"); do
  mkdir -p "$prefix/basalt$i"
  BASALT_DB="$db" "$bin" serve --http 127.0.0.1:0 --dir "$prefix/basalt$i" \
    >"$prefix/basalt$i.out" 2>"$prefix/basalt$i.log" </dev/null &
  pids+=($!)
done

upstreams=""
for i in $(seq 1 "$INSTANCES"); do
  pid="${pids[$((i - 1))]}"
  addr="$(instance_addr "$prefix/basalt$i.out" "$pid" "$prefix/basalt$i.log")"
  upstreams+="        server $addr;"$'\n'
  echo "basalt $i: http://$addr (pid $pid, log $prefix/basalt$i.log)"
done

conf="$(<"$here/nginx.conf")"
conf="${conf//__PREFIX__/$prefix}"
conf="${conf//__LISTEN__/127.0.0.1:$port}"
conf="${conf//__UPSTREAMS__/${upstreams%$'\n'}}"
printf '%s\n' "$conf" >"$prefix/nginx.conf"

nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -g 'daemon off;' \
  </dev/null >"$prefix/nginx.out" 2>&1 &
nginx_pid=$!
echo "nginx: pid $nginx_pid (config $prefix/nginx.conf)"

url="http://127.0.0.1:$port"
deadline=$((SECONDS + 15))
until curl -fs -o /dev/null --max-time 2 "$url/api/health"; do
  if ! kill -0 "$nginx_pid" 2>/dev/null; then
    echo "nginx exited during startup (port $port taken?)" >&2
    show_log "$prefix/nginx.out"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "no answer from $url/api/health within 15 s" >&2
    show_log "$prefix/error.log"
    exit 1
  fi
  sleep 0.05
done
echo "Ready at $url (nginx, round-robin over $INSTANCES instances; Ctrl-C stops everything)"

# Runs until a signal, or until nginx or an instance exits on its own.
set +e
wait -n "$nginx_pid" "${pids[@]}"
rc=$?
set -e
echo "a process exited on its own (status $rc); stopping the rest" >&2
exit 1
