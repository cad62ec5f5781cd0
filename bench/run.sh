#!/usr/bin/env bash
# Fanout's benchmark harness: the scenarios of shared/BENCHMARKS.md on loopback,
# each system measured side by side in interleaved rounds, one Markdown table
# of medians at the end. See docs/performance.md.
#
#   bash bench/run.sh                                   # S1 S2 S3 S4 S6 S8, 3 rounds of 10 s
#   DURATION=5s RUNS=3 SCENARIOS="S1 S2 S3" bash bench/run.sh
#   SCENARIOS="S5" bash bench/run.sh                    # the 500k backlog (long; only when named)
#   SCENARIOS="S3 S4 S7" bash bench/run.sh              # S7: S3/S4 on PostgreSQL, 1 and 2 nodes
#
# Environment (all optional):
#   SCENARIOS   scenarios to run (default "S1 S2 S3 S4 S6 S8"; S5 and S7 only when named)
#   DURATION    length of one measured run (10s)        RUNS      interleaved rounds (3)
#   WARMUP      warm-up per system (2s)                 CONNS     wrk connections for S1 ("64 8")
#   S2_RATE     S2 fixed rate, req/s (1000)             S4_RATE   S4 offered msg/s (10000)
#   S4_DURATION S4 load (30s)                           S5_MESSAGES (500000)
#   S6_RATE     S6 offered msg/s (1000)                 S6_DELAY  B's answer delay in S6 (2s)
#   DRAIN_TIMEOUT bound on waiting for async deliveries (180s)
#   STALL_TIMEOUT stop waiting when no delivery arrived for this long (30s)
#   PROFILE     1: CPU profile of Fanout under S1 via admin pprof (1)
#   OUT         output directory (bench/out/<timestamp>)
#   KEEP_DATA   1: keep the data directory $OUT/data (SQLite files; on the repo's disk,
#               not /tmp, which may be tmpfs and would make fsync free)
#   PG_DSN      S7's PostgreSQL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable); the
#               script starts the local cluster when it does not answer (pg_ctlcluster), and
#               skips S7 with a note when it still does not. Every run uses fresh schemas
#               (fobench_<time>_<pid>_*), dropped at the end, however it ends.
#   FANOUT_BIN  use this fanout binary instead of building ./cmd/fanout (e.g. to compare builds)
#   NO_INSTALL  1: never apt-get install (fail if wrk is missing; skip nginx if missing)
#
# It installs wrk and nginx from Debian's packages when they are missing, builds
# fanout with CGO_ENABLED=0, and stops every process it started when it ends,
# however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCENARIOS=${SCENARIOS:-"S1 S2 S3 S4 S6 S8"}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-"64 8"}
S2_RATE=${S2_RATE:-1000}
S4_RATE=${S4_RATE:-10000}
S4_DURATION=${S4_DURATION:-30s}
S5_MESSAGES=${S5_MESSAGES:-500000}
S6_RATE=${S6_RATE:-1000}
S6_DELAY=${S6_DELAY:-2s}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-180s}
STALL_TIMEOUT=${STALL_TIMEOUT:-30s}
PROFILE=${PROFILE:-1}
OUT=${OUT:-$ROOT/bench/out/$(date -u +%Y%m%d-%H%M%S)}
PG_DSN=${PG_DSN:-"postgres://postgres@127.0.0.1:5432/test?sslmode=disable"}
PG_SCHEMA_PREFIX="fobench_$(date -u +%Y%m%d%H%M%S)_$$"

log() { printf '== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
find_nginx() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -n "$(find_nginx)" ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ] && [ "${NO_INSTALL:-0}" != 1 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "installing ${missing[*]} from Debian's packages"
  $SUDO apt-get update -qq
  # RUNLEVEL=1 keeps the package's init script from starting a system nginx.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v wrk >/dev/null 2>&1 || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
NGINX=$(find_nginx)
[ -n "$NGINX" ] || log "no nginx: the nginx rows are skipped"
command -v go >/dev/null 2>&1 || { echo "go is missing" >&2; exit 1; }

# --- PostgreSQL (S7) --------------------------------------------------------
PG_OK=""
PG_SKIP=""
PSQL=$(command -v psql 2>/dev/null || true)
pg_ready() { PGCONNECT_TIMEOUT=3 timeout 10 "$PSQL" -X -qAt -d "$PG_DSN" -c 'SELECT 1' >/dev/null 2>&1; }
if [[ " $(echo "$SCENARIOS" | tr 'a-z,' 'A-Z ') " == *" S7 "* ]]; then
  if [ -z "$PSQL" ]; then
    PG_SKIP="psql is missing (apt-get install postgresql-client)"
  elif pg_ready; then
    PG_OK=1
  elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
    for v in $(ls /etc/postgresql); do
      log "starting PostgreSQL $v/main (pg_ctlcluster)"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
    done
    for _ in $(seq 1 30); do
      if pg_ready; then PG_OK=1; break; fi
      sleep 0.5
    done
    [ -n "$PG_OK" ] || PG_SKIP="PostgreSQL does not answer at $PG_DSN (even after pg_ctlcluster start)"
  else
    PG_SKIP="PostgreSQL does not answer at $PG_DSN and there is no local cluster to start (pg_ctlcluster)"
  fi
  if [ -n "$PG_OK" ]; then log "S7: PostgreSQL answers at $PG_DSN; schemas ${PG_SCHEMA_PREFIX}_*"
  else log "S7 skipped: $PG_SKIP"; fi
fi
# drop_schemas drops every schema of this run (the harness drops its own as
# it goes; this catches what a killed harness left).
drop_schemas() {
  [ -n "$PG_OK" ] || return 0
  local s
  for s in $(PGCONNECT_TIMEOUT=5 timeout 30 "$PSQL" -X -qAt -d "$PG_DSN" \
      -c "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '${PG_SCHEMA_PREFIX}_')" 2>/dev/null); do
    PGCONNECT_TIMEOUT=5 timeout 60 "$PSQL" -X -q -d "$PG_DSN" -c "DROP SCHEMA IF EXISTS \"$s\" CASCADE" >/dev/null 2>&1 \
      && log "dropped schema $s left by the harness" || log "could not drop schema $s"
  done
}

# --- build -------------------------------------------------------------------
mkdir -p "$OUT"
BIN="$OUT/bin"
mkdir -p "$BIN"
log "building fobench and fanout (CGO_ENABLED=0) into $BIN"
CGO_ENABLED=0 go build -o "$BIN/fobench" ./bench/cmd/fobench
FANOUT="$BIN/fanout"
BIN_SIZE=0
BIN_STRIPPED=0
if [ -n "${FANOUT_BIN:-}" ]; then
  FANOUT=$(readlink -f "$FANOUT_BIN")
  BIN_SIZE=$(stat -c %s "$FANOUT")
  log "using FANOUT_BIN=$FANOUT (not built here; no stripped size)"
elif CGO_ENABLED=0 go build -o "$FANOUT" ./cmd/fanout 2>"$OUT/fanout-build.log"; then
  BIN_SIZE=$(stat -c %s "$FANOUT")
  if CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$BIN/fanout-stripped" ./cmd/fanout 2>>"$OUT/fanout-build.log"; then
    BIN_STRIPPED=$(stat -c %s "$BIN/fanout-stripped")
    rm -f "$BIN/fanout-stripped"
  else
    log "the -s -w build failed (the tree changed between the two builds?): no stripped size"
  fi
else
  log "fanout does not build (see $OUT/fanout-build.log): running direct and nginx only"
  sed -n 1,5p "$OUT/fanout-build.log" >&2 || true
  FANOUT=""
fi

# --- run ---------------------------------------------------------------------
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/fanout-bench.XXXXXX")
PIDFILE="$TMPD/pgids"
: >"$PIDFILE"
RUNNER=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$RUNNER" ] && kill -0 "$RUNNER" 2>/dev/null; then
    kill -TERM "$RUNNER" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$RUNNER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RUNNER" 2>/dev/null || true
  fi
  # Whatever the runner started and did not stop (it is killed -9, say):
  # each was started in its own process group, whose id is in PIDFILE.
  if [ -s "$PIDFILE" ]; then
    while read -r pg; do
      [ -n "$pg" ] && kill -KILL -- "-$pg" 2>/dev/null || true
    done <"$PIDFILE"
  fi
  drop_schemas
  rm -rf "$TMPD"
  if [ "${KEEP_DATA:-0}" = 1 ]; then log "data kept in $OUT/data"; else rm -rf "$OUT/data"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

GOBIN_CMD=$(command -v go)
profile=false
[ "$PROFILE" = 1 ] && profile=true
"$BIN/fobench" run \
  -fanout "$FANOUT" -nginx "$NGINX" -wrk "$(command -v wrk)" -go "$GOBIN_CMD" \
  -out "$OUT" -tmp "$OUT/data" -pidfile "$PIDFILE" \
  -scenarios "$SCENARIOS" -runs "$RUNS" -duration "$DURATION" -warmup "$WARMUP" -conns "$CONNS" \
  -s2-rate "$S2_RATE" -s4-rate "$S4_RATE" -s4-duration "$S4_DURATION" -s5-messages "$S5_MESSAGES" \
  -s6-rate "$S6_RATE" -s6-delay "$S6_DELAY" -drain-timeout "$DRAIN_TIMEOUT" -stall-timeout "$STALL_TIMEOUT" \
  -pg-dsn "${PG_OK:+$PG_DSN}" -pg-skip "$PG_SKIP" -psql "${PSQL:-psql}" -pg-schema-prefix "$PG_SCHEMA_PREFIX" \
  -profile="$profile" -bin-size "$BIN_SIZE" -bin-size-stripped "$BIN_STRIPPED" &
RUNNER=$!
rc=0
wait "$RUNNER" || rc=$?
RUNNER=""
log "report: $OUT/report.md (raw results: $OUT/results.jsonl, logs and configs beside it)"
exit $rc
