//! Deterministic test messages: RFC 5322 headers and a plain-text body of dictionary words, CRLF lines,
//! never a line starting with '.', so SMTP needs no dot-stuffing. Every 100th message carries the rare
//! word the SEARCH TEXT workload looks for.

pub const MARKER: &str = "zebraquux";

const WORDS: &[&str] = &[
    "harbour",
    "ledger",
    "shipment",
    "invoice",
    "meeting",
    "quarterly",
    "forecast",
    "dock",
    "crane",
    "berth",
    "manifest",
    "container",
    "customs",
    "freight",
    "tide",
    "anchor",
    "voyage",
    "cargo",
    "pallet",
    "schedule",
    "the",
    "and",
    "for",
    "with",
    "about",
    "please",
    "review",
    "attached",
    "thanks",
    "regards",
    "tomorrow",
    "monday",
    "friday",
    "report",
    "budget",
    "approval",
    "draft",
    "final",
    "update",
    "status",
    "team",
    "office",
    "warehouse",
    "delivery",
    "order",
    "customer",
    "supplier",
    "contract",
    "payment",
    "account",
    "balance",
    "project",
    "deadline",
    "question",
    "answer",
    "summary",
    "details",
    "request",
    "response",
    "agenda",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: cheap and reproducible; quality is irrelevant here.
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub fn message(seq: u64, from: &str, to: &str, size: usize) -> Vec<u8> {
    let mut rng = Rng(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {} {} number {seq}\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <{seq}.{}@loadgen.bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
        WORDS[(rng.next() % WORDS.len() as u64) as usize],
        WORDS[(rng.next() % WORDS.len() as u64) as usize],
        rng.next(),
    )
    .into_bytes();
    let mut line = String::new();
    if seq.is_multiple_of(100) {
        line.push_str(MARKER);
    }
    while out.len() + line.len() < size.saturating_sub(2) {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        if line.len() + w.len() + 1 > 72 {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the messages `fill` would APPEND for one user (`--user`, `--messages`, `--size`) straight
/// into a Maildir (`--dir`, its `cur/`), as Dovecot itself stores them (LF line ends). For the
/// peer's SEARCH mailbox: Dovecot's APPEND into one Maildir slows to ~10 messages/s past 60,000,
/// so a 100,000-message mailbox can only be made this way.
pub fn write_maildir(args: &crate::args::Args) -> anyhow::Result<serde_json::Value> {
    let dir = std::path::PathBuf::from(args.required("dir")?);
    let user = args.user(args.num("user", 1)?);
    let n: u64 = args.num("messages", 100)?;
    let size: usize = args.num("size", 4096)?;
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let start = std::time::Instant::now();
    let pid = std::process::id();
    for k in 0..n {
        let crlf = message(k, &user, &user, size);
        let mut lf = Vec::with_capacity(crlf.len());
        for (i, &b) in crlf.iter().enumerate() {
            if !(b == b'\r' && crlf.get(i + 1) == Some(&b'\n')) {
                lf.push(b);
            }
        }
        let name = format!("{}.M{k}P{pid}.loadgen,S={}:2,", 1_700_000_000 + k, lf.len());
        std::fs::write(dir.join("cur").join(name), &lf)?;
    }
    let wall = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({ "messages": n, "wall_s": wall, "messages_per_s": n as f64 / wall }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_asked_size_and_need_no_dot_stuffing() {
        for (seq, size) in [(1u64, 4096usize), (100, 102_400), (7, 300)] {
            let m = message(seq, "a@bench.test", "b@bench.test", size);
            let text = String::from_utf8(m.clone()).unwrap();
            assert!(
                m.len() <= size + 80 && m.len() + 80 >= size,
                "{seq}: {} vs {size}",
                m.len()
            );
            assert!(text.split("\r\n").all(|l| !l.starts_with('.')));
            assert!(!text.replace("\r\n", "").contains('\n'));
            assert_eq!(text.contains(MARKER), seq.is_multiple_of(100));
        }
        assert_eq!(message(5, "a", "b", 999), message(5, "a", "b", 999));
    }
}
