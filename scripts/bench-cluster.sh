#!/usr/bin/env bash
# One ferrim node and two, under the same load, on PostgreSQL + NATS. Writes
# docs/benchmarks/cluster.md and puts it into docs/benchmarks.md in place, between
# <!-- cluster:begin --> and <!-- cluster:end --> (inserted before "## Raw output" the first
# time); scripts/bench-vs-ejabberd.sh includes the same file when it regenerates the page.
#
#   scripts/bench-cluster.sh                      # the documented scale (~3 minutes)
#   BENCH_SKIP_BUILD=1 scripts/bench-cluster.sh   # reuse target/release binaries
#   BENCH_WORKLOADS=chat scripts/bench-cluster.sh # W3 only (see BENCH_* below)
#
# Needs PostgreSQL and NATS running on this machine (defaults below). The nodes are started
# with scripts/cluster.sh (a fresh database before each run), pinned to core 0 like the
# single server of bench-vs-ejabberd.sh, so two nodes share that core; the load generator
# runs on core 1. Loopback only; every step is bounded by `timeout`, and the nodes are
# stopped on exit whatever happens.
#
# Before each measured run, a warm-up registers the users and sends a few hundred messages,
# then the database is ANALYZEd: on a fresh, never-analyzed database the nodes' prepared
# inbox query could keep a plan that scans every message on each pull (seen in about half
# of the runs without it, 1 node or 2), which a live deployment's autovacuum soon replaces.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench-cluster}
FRAG=${BENCH_FRAGMENT:-$ROOT/docs/benchmarks/cluster.md}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
# Ports away from scripts/cluster.sh's default 8471.. and bench-vs-ejabberd.sh's 18470.
FIRST_PORT=${BENCH_CLUSTER_PORT:-18571}
DATABASE=${BENCH_CLUSTER_DATABASE:-postgres://postgres@127.0.0.1:5432/ferrim_bench_cluster}
NATS=${BENCH_CLUSTER_NATS:-nats://127.0.0.1:4222}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-300}

# Scale (the same for one node and two).
USERS=${BENCH_USERS:-2000}
WORKLOADS=${BENCH_WORKLOADS:-chat,login}   # measured; the warm-up registers the users
WARMUP_CONNS=${BENCH_WARMUP_CONNS:-200}
WARMUP_RATE=${BENCH_WARMUP_RATE:-200}
WARMUP_SECS=${BENCH_WARMUP_SECS:-2}
CHAT_RATES=${BENCH_CHAT_RATES:-500,1000,2000,4000}
CHAT_STEP_SECS=${BENCH_CHAT_STEP_SECS:-3}
LOGIN_RATES=${BENCH_LOGIN_RATES:-250,500,1000,2000}
LOGIN_STEP_SECS=${BENCH_LOGIN_STEP_SECS:-3}

# shellcheck source=scripts/lib/bench-common.sh
. "$ROOT/scripts/lib/bench-common.sh"
CLUSTER_DIR=$OUT/cluster
# The line this script adds under "## Commands" of docs/benchmarks.md
# (bench-vs-ejabberd.sh prints the same one).
COMMANDS_LINE='scripts/bench-cluster.sh       # the cluster section: 1 node and 2 nodes on PostgreSQL + NATS, updated in place'
mkdir -p "$OUT" "$(dirname "$FRAG")"


# scripts/cluster.sh start N PORT | stop. Started under taskset, the nodes inherit its core.
cluster() {
  CLUSTER_DIR=$CLUSTER_DIR FERRIM_BIN=$FERRIM FERRIM_STORAGE=$DATABASE FERRIM_NATS_URL=$NATS \
    FERRIM_APP_KEY=bench#bench FERRIM_CLIENT_ID=bench-client FERRIM_CLIENT_SECRET=bench-secret \
    FERRIM_PASSWORD_HASH_COST=test FERRIM_LOG=warn \
    timeout 120 taskset -c "$SERVER_CPU" "$ROOT/scripts/cluster.sh" "$@"
}
cleanup() { cluster stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU seconds (user + system, plus reaped children: PostgreSQL's exited backends) of the
# given processes, summed.
cpu_ticks() {
  local total=0 p t
  for p in "$@"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# Busy ticks of the whole machine (all cores) from /proc/stat.
machine_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# CPU ticks of this shell's finished children, from the output of `times` saved in a file
# (`times` must run in this shell, not in a $(...) subshell).
children_ticks() {
  awk -v hz="$(getconf CLK_TCK)" 'NR == 2 {
    split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%d\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$1"
}
secs() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }'; }

# --- prerequisites -------------------------------------------------------------------
psql -qtA "${DATABASE%/*}/postgres" -c 'SELECT 1' >/dev/null ||
  { echo "PostgreSQL is not reachable at ${DATABASE%/*}" >&2; exit 1; }
nats_hostport=${NATS#nats://}
(exec 3<>"/dev/tcp/${nats_hostport%:*}/${nats_hostport##*:}") 2>/dev/null ||
  { echo "NATS is not reachable at $NATS" >&2; exit 1; }
build_release
PG_VERSION=$(psql -qtA "${DATABASE%/*}/postgres" -c 'SHOW server_version' | awk '{print $1}')
NATS_VERSION=$(nats-server --version 2>/dev/null | awk '{print $2}' || echo unknown)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

COMMON=(--workloads "$WORKLOADS" --users "$USERS" --idle-conns "$USERS"
  --chat-rates "$CHAT_RATES" --chat-step-secs "$CHAT_STEP_SECS"
  --login-rates "$LOGIN_RATES" --login-step-secs "$LOGIN_STEP_SECS"
  --offline-users 0 --kick-users 0 --source-ips 8)
WARMUP=(--workloads register,chat --users "$USERS" --idle-conns "$WARMUP_CONNS"
  --chat-rates "$WARMUP_RATE" --chat-step-secs "$WARMUP_SECS" --offline-users 0 --kick-users 0)

# --- one node, then two ----------------------------------------------------------------
declare -A WALL NODE_CPU PG_CPU NATS_CPU LOAD_CPU_S OTHER_CPU NOISY LOG_LINES URLS_OF
for n in 1 2; do
  name="$n node"; [ "$n" -gt 1 ] && name="$n nodes"
  log "$name: fresh database, nodes on core $SERVER_CPU"
  FRESH=1 cluster start "$n" "$FIRST_PORT" | tee "$OUT/nodes-$n.txt"
  urls=$(awk '{print $3}' "$OUT/nodes-$n.txt" | paste -sd, -)
  pids=$(awk '{print $5}' "$OUT/nodes-$n.txt" | paste -sd, -)
  [ "$(wc -l <"$OUT/nodes-$n.txt")" -eq "$n" ] || { echo "expected $n nodes" >&2; exit 1; }
  URLS_OF[$n]=$urls
  for p in ${pids//,/ }; do echo "node pid $p, affinity $(taskset -pc "$p" | awk -F': ' '{print $2}')"; done
  sleep 1

  BENCH_ARGS=(--target ferrim --url "$urls" --app-key bench#bench --client-id bench-client
    --client-secret bench-secret --hash-cost test --server-pid "$pids")
  log "$name: warm-up (registration, $((WARMUP_RATE * WARMUP_SECS)) messages), then ANALYZE"
  timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$BENCH" run "${BENCH_ARGS[@]}" "${WARMUP[@]}" \
    >"$OUT/warmup-$n.txt"
  sed -n '/^W0/,+1p' "$OUT/warmup-$n.txt"
  psql -q "$DATABASE" -c ANALYZE

  log "$name: measured run"
  node_t0=$(cpu_ticks ${pids//,/ })
  pg_t0=$(cpu_ticks $(pgrep -x postgres || true))
  nats_t0=$(cpu_ticks $(pgrep -x nats-server || true))
  machine_t0=$(machine_ticks)
  times >"$OUT/times-before-$n"
  start=$SECONDS
  timeout "$RUN_TIMEOUT" taskset -c "$LOAD_CPU" "$BENCH" run "${BENCH_ARGS[@]}" \
    --server-version "$FERRIM_VERSION, $name, PostgreSQL + NATS" "${COMMON[@]}" \
    --json "$OUT/run-$n.json" | tee "$OUT/run-$n.txt"
  WALL[$n]=$((SECONDS - start))
  machine=$(($(machine_ticks) - machine_t0))
  node=$(($(cpu_ticks ${pids//,/ }) - node_t0))
  pg=$(($(cpu_ticks $(pgrep -x postgres || true)) - pg_t0))
  nats=$(($(cpu_ticks $(pgrep -x nats-server || true)) - nats_t0))
  times >"$OUT/times-after-$n"
  load=$(($(children_ticks "$OUT/times-after-$n") - $(children_ticks "$OUT/times-before-$n")))
  NODE_CPU[$n]=$(secs "$node") PG_CPU[$n]=$(secs "$pg") NATS_CPU[$n]=$(secs "$nats")
  LOAD_CPU_S[$n]=$(secs "$load")
  # Whatever else ran on the machine meanwhile (other people's builds and tests): noise.
  other=$((machine - node - pg - nats - load))
  OTHER_CPU[$n]=$(secs $((other > 0 ? other : 0)))
  # More than a tenth of the machine's time went elsewhere: say so next to the figures.
  NOISY[$n]=$((other * 10 > $(nproc) * WALL[$n] * $(getconf CLK_TCK)))
  cluster stop
  # Anything the nodes logged at WARN or above (they run with FERRIM_LOG=warn).
  cat "$CLUSTER_DIR"/node*.log >"$OUT/logs-$n.txt" 2>/dev/null || true
  LOG_LINES[$n]=$(grep -cE 'WARN|ERROR' "$OUT/logs-$n.txt" || true)
done

# --- report ------------------------------------------------------------------------------
log "1 node vs 2 nodes"
"$BENCH" compare --a "$OUT/run-1.json" --b "$OUT/run-2.json" --a-name "1 node" \
  --b-name "2 nodes" --md "$OUT/compare.md" | tee "$OUT/compare.txt"

MACHINE=$(machine_line)
{
  echo "## Cluster: one node and two nodes"
  echo
  echo "Generated by \`scripts/bench-cluster.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (the rest of this page comes from \`scripts/bench-vs-ejabberd.sh\`). Do not edit by hand: re-run the script."
  echo
  echo "- **Machine**: $MACHINE; load average before the runs $LOADAVG"
  echo "- **ferrim**: $FERRIM_VERSION (release build) in cluster mode: PostgreSQL $PG_VERSION (database dropped and created anew before each run) and NATS $NATS_VERSION, both on this machine; nodes started by \`scripts/cluster.sh\`, \`FERRIM_PASSWORD_HASH_COST=test\`"
  echo "- **Pinning**: every node \`taskset -c $SERVER_CPU\` (two nodes share that one core), load generator \`taskset -c $LOAD_CPU\`; PostgreSQL and NATS are system services, not pinned; loopback only"
  echo "- **Warm-up**: before each measured run the users are registered (REST, node 1) and $WARMUP_CONNS of them exchange $((WARMUP_RATE * WARMUP_SECS)) messages, then \`ANALYZE\`: on a fresh, never-analyzed database the nodes' prepared inbox query sometimes kept a plan that scans every message on each pull (in about half of the trial runs, with 1 node or 2: ~1,000 sequential scans of \`messages\` and p50 > 100 ms at 1,000 msgs/s instead of 5 and < 20 ms); a live deployment's autovacuum analyzes within a minute, which replaces such plans"
  echo "- **Load**: the same for both runs: $USERS users, all connected and held, connections round-robin over the nodes, REST (tokens) through node 1; W3 one-to-one chat at $CHAT_RATES msgs/s for $CHAT_STEP_SECS s each, each message from a random connection to a random other one, so with two nodes about half cross nodes (the *cross-node* columns); W1 logins at $LOGIN_RATES/s for $LOGIN_STEP_SECS s each, spread over the nodes the same way"
  echo
  cat "$OUT/compare.md"
  echo "**Whole measured runs** (first connection to the last step, CPU seconds out of $(nproc) × wall; PostgreSQL counts every backend on this machine, other users' included; *other* is the rest of the machine's busy time, i.e. unrelated processes — noise):"
  echo
  echo "| run | wall s | ferrim nodes CPU s | PostgreSQL CPU s | NATS CPU s | load generator CPU s | other CPU s | node log lines at WARN or above |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for n in 1 2; do
    name="$n node"; [ "$n" -gt 1 ] && name="$n nodes"
    echo "| $name | ${WALL[$n]} | ${NODE_CPU[$n]} | ${PG_CPU[$n]} | ${NATS_CPU[$n]} | ${LOAD_CPU_S[$n]} | ${OTHER_CPU[$n]} | ${LOG_LINES[$n]} |"
  done
  for n in 1 2; do
    if [ "${NOISY[$n]}" = 1 ]; then
      echo
      echo "**Note:** other processes used more than a tenth of the machine during the $n-node run; its figures are pessimistic. Re-run on a quiet machine."
    fi
  done
  echo
  echo "### What this measures"
  echo
  echo "This machine has $(nproc) cores: the nodes get core $SERVER_CPU and the load generator core $LOAD_CPU, so a second node brings no CPU of its own, and PostgreSQL and NATS (not pinned) take their share from the same cores — PostgreSQL more than the nodes themselves (table above). **These figures show the cost of the bus and of PostgreSQL, not a speed-up.** In cluster mode every message is committed to PostgreSQL, then read back from there by the recipient's connection (the in-memory live tail that spares that read serves a single process on the embedded store only), and a hint goes out on NATS. With two nodes, about half the messages also wait for the hint to reach the other node before the recipient's connection pulls — the cross-node columns show what that hop adds — while every hint reaches both nodes, each node commits in smaller groups, and two processes share the core one had, so the cost per message grows for all messages, not only for those that cross. While the nodes' core is not saturated, the limit is PostgreSQL on the shared cores and each node's database pools (16 connections for the store, 8 for sessions; in the top W1 step logins can wait for one: the WARN lines are sqlx reporting waits over 2 s). The ferrim-vs-ejabberd tables above use the embedded store, not PostgreSQL, and are not comparable with these."
  echo
  echo "What scales on more machines ([docs/cluster.md](cluster.md#what-scales-with-what)): connections and the CPU spent on them (WebSocket framing, protocol, fan-out to devices) grow with nodes, each on its own cores; every message is still one row in the one PostgreSQL primary and one hint broadcast to every node, so message throughput is bounded by the primary's commit rate (group commits of up to 512 messages per node help) and bus traffic grows with messages × nodes."
  echo
  echo "### Command"
  echo
  echo '```sh'
  echo "scripts/bench-cluster.sh"
  echo "# which runs, for N = 1 and N = 2:"
  echo "FRESH=1 FERRIM_STORAGE=$DATABASE FERRIM_NATS_URL=$NATS FERRIM_PASSWORD_HASH_COST=test \\"
  echo "  taskset -c $SERVER_CPU scripts/cluster.sh start N $FIRST_PORT"
  for n in 1 2; do
    echo "taskset -c $LOAD_CPU target/release/ferrim-bench run --target ferrim --url ${URLS_OF[$n]} --app-key bench#bench --hash-cost test --server-pid PID[,PID] ${WARMUP[*]}"
    echo "psql $DATABASE -c ANALYZE"
    echo "taskset -c $LOAD_CPU target/release/ferrim-bench run --target ferrim --url ${URLS_OF[$n]} --app-key bench#bench --hash-cost test --server-pid PID[,PID] ${COMMON[*]} --json run-$n.json"
  done
  echo "scripts/cluster.sh stop"
  echo "target/release/ferrim-bench compare --a run-1.json --b run-2.json --a-name '1 node' --b-name '2 nodes' --md compare.md"
  echo '```'
  echo
  for n in 1 2; do
    name="$n node"; [ "$n" -gt 1 ] && name="$n nodes"
    echo "<details><summary>Raw output, $name</summary>"
    echo
    echo '```'
    cat "$OUT/run-$n.txt"
    if [ "${LOG_LINES[$n]}" -gt 0 ]; then
      echo
      echo "first node log lines at WARN or above (of ${LOG_LINES[$n]}):"
      # awk reads all its input: no SIGPIPE for `set -o pipefail` to trip on.
      grep -E 'WARN|ERROR' "$OUT/logs-$n.txt" | cut -c1-300 | awk 'NR <= 5' 
    fi
    echo '```'
    echo "</details>"
    echo
  done
} >"$FRAG"
log "wrote $FRAG"

# --- docs/benchmarks.md, in place --------------------------------------------------------
if [ ! -f "$DOC" ]; then
  log "no $DOC yet: scripts/bench-vs-ejabberd.sh will include the fragment when it writes it"
  exit 0
fi
tmp=$(mktemp)
awk -v frag="$FRAG" -v commands_line="$COMMANDS_LINE" '
  function fragment(line) {
    print "<!-- cluster:begin -->"
    while ((getline line < frag) > 0) print line
    close(frag)
    print "<!-- cluster:end -->"
    print ""
    placed = 1
  }
  $0 == "<!-- cluster:begin -->" { skipping = 1; if (!placed) fragment(); next }
  skipping { if ($0 == "<!-- cluster:end -->") { skipping = 0; after_end = 1 }; next }
  after_end && $0 == "" { after_end = 0; next }
  { after_end = 0 }
  /^scripts\/bench-cluster\.sh/ { next }   # the Commands line, put back below once
  $0 == "## Raw output" && !placed { fragment() }
  { print }
  $0 == "scripts/bench-vs-ejabberd.sh" { print commands_line }
' "$DOC" >"$tmp"
cat "$tmp" >"$DOC"
rm -f "$tmp"
log "updated the cluster section of $DOC (results in $OUT)"
