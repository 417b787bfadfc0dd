#!/usr/bin/env bash
# Starts or stops a ferrim cluster on this machine: N nodes on one PostgreSQL database and
# one NATS server (docs/cluster.md). Used by hand and by benchmarks.
#
#   scripts/cluster.sh start N [FIRST_PORT]   # nodes 1..N on FIRST_PORT.. (default 8471)
#   scripts/cluster.sh stop
#
# Environment (defaults in brackets):
#   FERRIM_BIN        the binary [target/release/ferrim]
#   FERRIM_STORAGE    the database [postgres://postgres@127.0.0.1:5432/ferrim_cluster];
#                     created if missing; with FRESH=1 dropped and created anew
#   FERRIM_NATS_URL   [nats://127.0.0.1:4222]
#   FERRIM_APP_KEY, FERRIM_CLIENT_ID, FERRIM_CLIENT_SECRET, FERRIM_PASSWORD_HASH_COST and
#   any other FERRIM_* setting are passed to every node.
#   CLUSTER_DIR       where logs and pids go [target/cluster]
# Prints one line per node: "node N http://127.0.0.1:PORT ws://127.0.0.1:PORT/ws PID".
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${FERRIM_BIN:-target/release/ferrim}"
dir="${CLUSTER_DIR:-target/cluster}"
export FERRIM_STORAGE="${FERRIM_STORAGE:-postgres://postgres@127.0.0.1:5432/ferrim_cluster}"
export FERRIM_NATS_URL="${FERRIM_NATS_URL:-nats://127.0.0.1:4222}"

stop() {
  [ -f "$dir/pids" ] || return 0
  while read -r pid; do
    kill "$pid" 2>/dev/null || true
  done <"$dir/pids"
  # Graceful stop takes the nodes' sessions out of the shared view at once.
  for _ in $(seq 50); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids"
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  rm -f "$dir/pids"
}

ensure_database() {
  local db="${FERRIM_STORAGE##*/}"
  db="${db%%\?*}"
  local admin="${FERRIM_STORAGE%/*}/postgres"
  if [ "${FRESH:-0}" = 1 ]; then
    psql -q "$admin" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
  fi
  if ! psql -qtA "$admin" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql -q "$admin" -c "CREATE DATABASE \"$db\""
  fi
}

start() {
  local n="$1" first="${2:-8471}"
  [ -x "$bin" ] || { echo "no binary at $bin (cargo build --release -p ferrim-server)" >&2; exit 1; }
  stop
  mkdir -p "$dir"
  ensure_database
  "$bin" migrate >/dev/null
  : >"$dir/pids"
  for i in $(seq 1 "$n"); do
    local port=$((first + i - 1))
    "$bin" serve --node-id "$i" --listen "127.0.0.1:$port" --data-dir "$dir/data$i" \
      >"$dir/node$i.out" 2>"$dir/node$i.log" &
    echo $! >>"$dir/pids"
    for _ in $(seq 300); do
      curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -fs "http://127.0.0.1:$port/health" >/dev/null || {
      echo "node $i did not start; see $dir/node$i.log" >&2
      exit 1
    }
    echo "node $i http://127.0.0.1:$port ws://127.0.0.1:$port/ws $!"
  done
}

case "${1:-}" in
  start) start "${2:?how many nodes}" "${3:-8471}" ;;
  stop) stop ;;
  *) echo "usage: $0 start N [FIRST_PORT] | stop" >&2; exit 2 ;;
esac
