# Shared by the benchmark scripts (sourced, not run): the release binaries and how they are
# built. Expects ROOT (the repository) to be set.

FERRIM=$ROOT/target/release/ferrim
BENCH=$ROOT/target/release/ferrim-bench

log() { printf '\n=== %s\n' "$*"; }

# Builds the release binaries unless BENCH_SKIP_BUILD=1 and both exist; sets FERRIM_VERSION.
build_release() {
  if [ "${BENCH_SKIP_BUILD:-0}" = 1 ] && [ -x "$FERRIM" ] && [ -x "$BENCH" ]; then
    log "using the existing release binaries (BENCH_SKIP_BUILD=1)"
  else
    log "building ferrim and ferrim-bench (release)"
    (cd "$ROOT" && timeout 1800 cargo build --release -p ferrim-server -p ferrim-bench)
  fi
  FERRIM_VERSION="$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
}

# One line describing this machine, for the reports.
machine_line() {
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  echo "$cpu, $(nproc) CPUs, $(free -g | awk '/^Mem:/{print $2}') GiB RAM, $(uname -sr)"
}
