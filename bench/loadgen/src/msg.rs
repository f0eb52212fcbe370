//! Deterministic test messages: RFC 5322 headers and a plain-text body of dictionary words, CRLF lines,
//! never a line starting with '.', so SMTP needs no dot-stuffing. Every 100th message carries the rare
//! word the SEARCH TEXT workload looks for; every 1,000th (from the 500th on) is multipart, its
//! body followed by a PDF attachment whose text holds a word found nowhere else
//! (`ATTACHMENT_MARKER`), for the attachment-only SEARCH (issue 22).

use base64::Engine;

pub const MARKER: &str = "zebraquux";
/// Only in the PDF attachment of every 1,000th message (base64, so not in the raw message).
pub const ATTACHMENT_MARKER: &str = "lighthousekeeper";

/// Whether message `seq` carries the PDF attachment.
fn has_attachment(seq: u64) -> bool {
    seq % 1000 == 500
}

/// A one-page PDF showing `text` (uncompressed content stream, standard font, exact xref).
fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The MIME part of the PDF attachment, base64 in 76-character lines, closing the multipart.
fn attachment_part(boundary: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(pdf(&format!(
        "Safety notes for the {ATTACHMENT_MARKER} of the north pier"
    )));
    let mut part = format!(
        "--{boundary}\r\nContent-Type: application/pdf; name=notes.pdf\r\n\
         Content-Disposition: attachment; filename=notes.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    for chunk in data.as_bytes().chunks(76) {
        part.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        part.push_str("\r\n");
    }
    part.push_str(&format!("--{boundary}--\r\n"));
    part
}

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
    let boundary = format!("part-{seq}");
    let (content_type, attachment) = if has_attachment(seq) {
        (
            format!(
                "multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii"
            ),
            attachment_part(&boundary),
        )
    } else {
        ("text/plain; charset=us-ascii".to_string(), String::new())
    };
    let mut out = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {} {} number {seq}\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <{seq}.{}@loadgen.bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n",
        WORDS[(rng.next() % WORDS.len() as u64) as usize],
        WORDS[(rng.next() % WORDS.len() as u64) as usize],
        rng.next(),
    )
    .into_bytes();
    let size = size.saturating_sub(attachment.len());
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
    out.extend_from_slice(attachment.as_bytes());
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

    #[test]
    fn the_attachment_word_is_only_inside_the_pdf() {
        for seq in [500u64, 1500, 99_500] {
            let m = String::from_utf8(message(seq, "a@bench.test", "b@bench.test", 2048)).unwrap();
            assert!(m.contains("multipart/mixed"), "{m}");
            assert!(
                !m.contains(ATTACHMENT_MARKER),
                "only base64 in the raw message"
            );
            assert!(m.split("\r\n").all(|l| !l.starts_with('.')));
            let b64: String = m
                .split("\r\n\r\n")
                .nth(3)
                .unwrap()
                .split("--")
                .next()
                .unwrap()
                .replace("\r\n", "");
            let pdf = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            assert!(pdf.starts_with(b"%PDF-1.4"));
            assert!(String::from_utf8_lossy(&pdf).contains(ATTACHMENT_MARKER));
        }
        for seq in [0u64, 499, 501, 1000] {
            assert!(
                !String::from_utf8(message(seq, "a", "b", 2048))
                    .unwrap()
                    .contains("multipart")
            );
        }
    }
}
