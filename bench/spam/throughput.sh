#!/usr/bin/env bash
# SMTP inbound throughput with the spam filter on and off, in the same run (issue 18's target:
# within 20 %). One Wharf per setting, on loopback ports, each on a fresh data directory, with
# the trust checks off (no DNS) so that only the filter differs; SESSIONS smtp-source processes
# (Postfix's load client) each send MESSAGES/SESSIONS messages of SIZE bytes; the clock stops
# when smtp-source ends (Wharf answers 250 only once a message is committed). Prints msg/s per
# setting and the ratio, best of ROUNDS.
#
#   WHARF_BIN=target/release/wharf bash bench/spam/throughput.sh
#   MESSAGES=2000 SESSIONS=16 SIZE=4096 ROUNDS=3 bash bench/spam/throughput.sh
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
BIN="${WHARF_BIN:-${CARGO_TARGET_DIR:-target}/release/wharf}"
MESSAGES="${MESSAGES:-2000}" SESSIONS="${SESSIONS:-16}" SIZE="${SIZE:-4096}" ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-26025}"
command -v smtp-source >/dev/null || { echo "smtp-source missing (Debian package postfix)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no Wharf binary at $BIN (set WHARF_BIN)" >&2; exit 1; }
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

run_one() { # enabled → msg/s
  local enabled=$1 dir="$work/$1-$2"
  mkdir -p "$dir"
  cat > "$dir/wharf.toml" <<EOF
[server]
hostname = "mail.bench.test"
primary_domain = "bench.test"
data_dir = "data"
[inbound]
enabled = false
[spam]
enabled = $enabled
[smtp]
# smtp-source opens one connection per message; Postfix has no per-client rate limit either.
max_connection_rate_per_ip = 0
[log]
level = "warn"
[[listener]]
name = "mx"
address = "127.0.0.1"
port = $PORT
protocol = "smtp"
EOF
  (cd "$dir" && "$BIN" --config wharf.toml domain add bench.test >/dev/null)
  for u in $(seq 1 "$SESSIONS"); do
    (cd "$dir" && printf 'bench password 1234\n' | "$BIN" --config wharf.toml user add "user$u@bench.test" --password-stdin >/dev/null)
  done
  (cd "$dir" && exec "$BIN" --config wharf.toml serve >/dev/null 2>"$dir/serve.log") &
  pid=$!
  local up=0
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then up=1; break; fi
    sleep 0.1
  done
  [ "$up" = 1 ] || { echo "Wharf did not start:" >&2; cat "$dir/serve.log" >&2; exit 1; }
  local per=$((MESSAGES / SESSIONS)) t0 t1 pids=()
  t0=$(date +%s.%N)
  for u in $(seq 1 "$SESSIONS"); do
    smtp-source -s 1 -m "$per" -l "$SIZE" -f sender@loadgen.invalid -M loadgen.invalid \
      -t "user$u@bench.test" "127.0.0.1:$PORT" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "smtp-source failed" >&2; exit 1; }; done
  t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  python3 -c "print(f'{$per * $SESSIONS / ($t1 - $t0):.1f}')"
}

best_on=0 best_off=0
for r in $(seq 1 "$ROUNDS"); do
  off=$(run_one false "$r"); on=$(run_one true "$r")
  echo "round $r: filter off $off msg/s, filter on $on msg/s"
  best_off=$(python3 -c "print(max($best_off, $off))"); best_on=$(python3 -c "print(max($best_on, $on))")
done
python3 -c "print(f'best: off {$best_off} msg/s, on {$best_on} msg/s, on/off = {$best_on / $best_off:.3f}')"
