#!/usr/bin/env python3
"""Turns bench/run's raw records (one JSON object per workload run) into the summary table and the JSON
result file. Figures are medians over rounds; "Wharf ×" is Wharf's advantage (>1 means Wharf is better,
whether the figure is a rate or a latency/memory cost); peak RSS is the highest sampled sum over each
server's process tree (Postfix + Dovecot for the SMTP rows)."""

import json
import statistics
import sys

# workload -> list of (row label, unit, extractor, higher_is_better)
def op(name, key):
    return lambda r: r["ops"].get(name, {}).get(key)

STEADY_OPS = ["select", "fetch_flags", "fetch_body", "store", "search_unseen", "status", "append", "expunge"]
IMAP_OPS = ["login", "select", "fetch_flags", "fetch_body", "store", "search_unseen", "append", "idle", "logout"]

ROWS = {
    "smtp-4k": [("SMTP inbound 4 KiB, durable in mailbox", "msg/s", lambda r: r["messages_per_s"], True)],
    "smtp-100k": [("SMTP inbound 100 KiB, durable in mailbox", "msg/s", lambda r: r["messages_per_s"], True)],
    "submit": [
        ("Submission TLS+AUTH 4 KiB", "msg/s", lambda r: r["messages_per_s"], True),
        ("Submission p99 per message", "ms", op("message", "p99_ms"), False),
    ],
    "imap": [(f"IMAP mix {o}", "ops/s", op(o, "ops_per_s"), True) for o in IMAP_OPS]
    + [(f"IMAP mix {o} p99", "ms", op(o, "p99_ms"), False) for o in IMAP_OPS],
    # The same mix at a fixed offered load (`--rate`): latencies of two servers doing equal work.
    "imap-paced": [("IMAP mix at equal load, sessions", "sessions/s", op("login", "ops_per_s"), True)]
    + [(f"IMAP mix at equal load, {o} p50", "ms", op(o, "p50_ms"), False) for o in IMAP_OPS]
    + [(f"IMAP mix at equal load, {o} p99", "ms", op(o, "p99_ms"), False) for o in IMAP_OPS],
    # Sessions that stay logged in (imaptest's logout=0 mix): "commands" counts every timed operation
    # (an expunge is STORE \\Deleted + EXPUNGE, timed as one).
    "imap-steady": [("IMAP logged-in, operations", "ops/s",
                     lambda r: sum(v.get("ops_per_s", 0) for v in r["ops"].values()), True)]
    + [(f"IMAP logged-in {o} p50", "ms", op(o, "p50_ms"), False) for o in STEADY_OPS]
    + [(f"IMAP logged-in {o} p99", "ms", op(o, "p99_ms"), False) for o in STEADY_OPS],
    "download": [("IMAP full download FETCH 1:* BODY.PEEK[]", "msg/s", lambda r: r["messages_per_s"], True)],
    "pop3": [("POP3 RETR, all clients", "msg/s", lambda r: r["messages_per_s"], True)],
    "search": [
        ("SEARCH TEXT, first", "ms", lambda r: r["first_ms"], False),
        ("SEARCH TEXT p50", "ms", op("search_text", "p50_ms"), False),
        ("SEARCH TEXT rare word, hits", "messages", lambda r: r["hits"], True),
    ],
    **{
        f"search-{kind}": [
            (f"SEARCH TEXT {label} p50", "ms", op("search_text", "p50_ms"), False),
            (f"SEARCH TEXT {label}, hits", "messages", lambda r: r["hits"], True),
        ]
        for kind, label in [("common", "common word"), ("inside", "part of a word"), ("phrase", "phrase"),
                            ("attachment", "word only in a PDF attachment"),
                            ("fuzzy", "FUZZY rare word, plural")]
    },
    "idle": [
        ("Idle IMAP/TLS session RSS", "KiB/session", lambda r: r["rss_kib_per_session"], False),
        ("Idle IMAP/TLS session PSS", "KiB/session", lambda r: r["pss_kib_per_session"], False),
        ("Idle sessions: accept+TLS+LOGIN+IDLE", "sessions/s", lambda r: r["sessions_per_s"], True),
    ],
    "fill-pop": [("APPEND (filling POP3 users)", "msg/s", lambda r: r["messages_per_s"], True)],
    "fill-download": [("APPEND (filling download mailbox)", "msg/s", lambda r: r["messages_per_s"], True)],
    "fill-steady": [("APPEND (filling logged-in users)", "msg/s", lambda r: r["messages_per_s"], True)],
    "fill-search": [("APPEND (filling search mailbox)", "msg/s", lambda r: r["messages_per_s"], True)],
}
ORDER = ["smtp-4k", "smtp-100k", "submit", "imap", "imap-paced", "imap-steady", "download", "pop3", "search",
         "search-common", "search-inside", "search-phrase", "search-attachment", "search-fuzzy", "idle",
         "fill-pop", "fill-download", "fill-search", "fill-steady"]


def fmt(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main():
    raw, out_path = sys.argv[1], sys.argv[2]
    meta = {}
    if "--meta" in sys.argv:
        for kv in sys.argv[sys.argv.index("--meta") + 1:]:
            k, _, v = kv.partition("=")
            meta[k] = v
    recs = [json.loads(line) for line in open(raw) if line.strip()]
    rows, problems = [], []
    for wl in ORDER:
        mine = [r for r in recs if r["workload"] == wl]
        if not mine:
            continue
        peak = {}
        for r in mine:
            if r.get("peak"):
                peak[r["server"]] = max(peak.get(r["server"], 0), r["peak"].get("rss_kb", 0))
            res = r.get("result") or {}
            if r.get("error") or res.get("errors"):
                problems.append(f"{wl}/{r['server']} round {r['round']}: "
                                f"{(r.get('error') or res.get('last_error') or '').strip()[-300:]}")
        for label, unit, get, higher in ROWS[wl]:
            vals = {}
            for srv in ("wharf", "peer"):
                xs = []
                for r in mine:
                    if r["server"] != srv or not r.get("result"):
                        continue
                    try:
                        v = get(r["result"])
                    except (KeyError, TypeError):
                        v = None
                    if v is not None:
                        xs.append(float(v))
                vals[srv] = statistics.median(xs) if xs else None
            w, p = vals["wharf"], vals["peer"]
            ratio = None
            if w and p:
                ratio = w / p if higher else p / w
            rows.append({"workload": label, "unit": unit, "higher_is_better": higher, "wharf": w, "peer": p,
                         "wharf_advantage": ratio,
                         "wharf_peak_rss_mib": peak.get("wharf", 0) / 1024 or None,
                         "peer_peak_rss_mib": peak.get("peer", 0) / 1024 or None})
    head = "| workload | unit | Wharf | peer | Wharf × | Wharf peak RSS MiB | peer peak RSS MiB |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['unit']} | {fmt(r['wharf'])} | {fmt(r['peer'])} | "
                     f"{fmt(r['wharf_advantage'])} | {fmt(r['wharf_peak_rss_mib'])} | {fmt(r['peer_peak_rss_mib'])} |")
    table = "\n".join(lines)
    print(table)
    if meta.get("wharf_note"):
        print(f"\nWharf not measured: {meta['wharf_note']}")
    if problems:
        print("\nproblems:")
        for p in problems:
            print("  " + p.replace("\n", " "))
    with open(out_path, "w") as f:
        json.dump({"meta": meta, "rows": rows, "problems": problems, "table_markdown": table, "runs": recs},
                  f, indent=1)


if __name__ == "__main__":
    main()
