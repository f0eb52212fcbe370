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
