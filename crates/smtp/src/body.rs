//! Message content receiver for DATA (dot-stuffed, ended only by `<CRLF>.<CRLF>`) and BDAT (raw
//! chunks). Sans-io: fed byte slices as they arrive, it enforces the size cap, the text-line limit
//! and the bare-LF / bare-CR policy, and holds the message in memory once at most. Once a message is
//! doomed (too big, bare line break under the reject policy, overlong line) nothing more is stored:
//! the rest of the stream is only scanned for its end. The bytes held can be taken out at any
//! time (`take_buffered`), which is how the session moves large messages to the spool.

use crate::config::BareLfPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Data,
    Bdat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooBig,
    BareLineBreak,
    LineTooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// At the start of a line (after a real CRLF, or at the beginning).
    Start,
    /// DATA: a '.' at the start of a line.
    Dot,
    /// DATA: ".\r" at the start of a line.
    DotCr,
    Mid,
    /// A CR not yet known to be followed by LF.
    Cr,
}

#[derive(Debug)]
pub struct BodyReceiver {
    framing: Framing,
    policy: BareLfPolicy,
    limit: u64,
    max_line: usize,
    buf: Vec<u8>,
    /// Offset in `buf` where the client's content starts (trace headers come before).
    base: usize,
    /// Content octets received so far (after un-stuffing), counted even once nothing is stored.
    received: u64,
    line_len: usize,
    st: St,
    overflow: bool,
    bare: bool,
    long_line: bool,
}

/// A complete message: `raw[..body_start]` are the prepended trace headers.
#[derive(Debug)]
pub struct Received {
    pub raw: Vec<u8>,
    pub body_start: usize,
    pub bare_line_breaks: bool,
}

impl BodyReceiver {
    /// `prefix`: bytes placed before the content (trace headers). `size_hint`: the MAIL SIZE value.
    pub fn new(
        framing: Framing,
        policy: BareLfPolicy,
        limit: usize,
        max_line: usize,
        prefix: Vec<u8>,
        size_hint: Option<u64>,
    ) -> BodyReceiver {
        Self::with_reserve_cap(framing, policy, limit, max_line, prefix, size_hint, 1 << 20)
    }

    /// `new`, allocating at most `reserve_cap` octets up front whatever SIZE announced.
    pub fn with_reserve_cap(
        framing: Framing,
        policy: BareLfPolicy,
        limit: usize,
        max_line: usize,
        prefix: Vec<u8>,
        size_hint: Option<u64>,
        reserve_cap: usize,
    ) -> BodyReceiver {
        let mut buf = prefix;
        let base = buf.len();
        // Room for the announced content plus the few headers submission may add, so that a
        // message within its SIZE is never copied by a reallocation. An announcement only buys
        // `reserve_cap` up front; beyond that the buffer grows with the bytes actually received.
        let hint = size_hint
            .unwrap_or(16 * 1024)
            .min(limit as u64)
            .min(reserve_cap as u64) as usize;
        buf.reserve(hint + 512);
        BodyReceiver {
            framing,
            policy,
            limit: limit as u64,
            max_line,
            buf,
            base,
            received: 0,
            line_len: 0,
            st: St::Start,
            overflow: false,
            bare: false,
            long_line: false,
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Octets held in memory now (the prefix included until first taken).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Hands over the octets held so far (to be appended to the spool), keeping `spare`, emptied,
    /// as the new buffer so its allocation is reused. `finish` then returns only what came after.
    pub fn take_buffered(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        spare.clear();
        std::mem::replace(&mut self.buf, spare)
    }

    /// True once the message can no longer be accepted.
    pub fn doomed(&self) -> bool {
        self.overflow || self.long_line || (self.bare && self.policy == BareLfPolicy::Reject)
    }

    /// Marks the message too big without looking at the bytes (a BDAT chunk that would exceed the cap).
    pub fn set_too_big(&mut self) {
        self.overflow = true;
        self.buf = Vec::new();
    }

    /// DATA: consumes bytes up to and including the terminating `<CRLF>.<CRLF>`.
    /// Returns (bytes consumed, whether the end was seen); bytes after the end are not consumed.
    pub fn feed_data(&mut self, input: &[u8]) -> (usize, bool) {
        debug_assert_eq!(self.framing, Framing::Data);
        self.feed(input)
    }

    /// BDAT: every byte is content.
    pub fn feed_chunk(&mut self, input: &[u8]) {
        let _ = self.feed(input);
    }

    fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            if self.st == St::Mid || (self.st == St::Start && self.framing == Framing::Bdat) {
                let rest = &input[i..];
                let n = rest
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                if n > 0 {
                    self.emit(&rest[..n]);
                    self.st = St::Mid;
                    i += n;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            match self.st {
                St::Start if b == b'.' && self.framing == Framing::Data => self.st = St::Dot,
                St::Start | St::Mid => self.mid(b),
                // RFC 5321 §4.5.2: the first of a leading period is removed.
                St::Dot if b == b'\r' => self.st = St::DotCr,
                St::Dot => self.mid(b),
                St::DotCr if b == b'\n' => return (i, true),
                St::DotCr => {
                    // ".<CR>x": not an end. The lone dot stays content.
                    self.emit(b".");
                    self.bare_break();
                    self.mid(b);
                }
                St::Cr if b == b'\n' => {
                    self.emit_crlf();
                    self.st = St::Start;
                }
                St::Cr => {
                    self.bare_break();
                    self.mid(b);
                }
            }
        }
        (i, false)
    }

    fn mid(&mut self, b: u8) {
        match b {
            b'\r' => self.st = St::Cr,
            b'\n' => self.bare_break(),
            _ => {
                self.emit(&[b]);
                self.st = St::Mid;
            }
        }
    }

    /// A bare LF, or a CR not followed by LF. Never a line start: no un-stuffing, no end of DATA.
    fn bare_break(&mut self) {
        self.bare = true;
        self.st = St::Mid;
        match self.policy {
            BareLfPolicy::Normalize => self.emit_crlf(),
            BareLfPolicy::Reject => self.buf = Vec::new(),
        }
    }

    fn emit(&mut self, s: &[u8]) {
        self.line_len += s.len();
        if self.max_line > 0 && self.line_len + 2 > self.max_line && !self.long_line {
            self.long_line = true;
            self.buf = Vec::new();
        }
        self.store(s);
    }

    fn emit_crlf(&mut self) {
        self.line_len = 0;
        self.store(b"\r\n");
    }

    fn store(&mut self, s: &[u8]) {
        self.received += s.len() as u64;
        if self.received > self.limit && !self.overflow {
            self.overflow = true;
            self.buf = Vec::new();
        }
        if !self.doomed() {
            self.buf.extend_from_slice(s);
        }
    }

    /// Ends the message (after `<CRLF>.<CRLF>` or the LAST chunk).
    pub fn finish(mut self) -> Result<Received, BodyError> {
        if self.st == St::Cr {
            self.bare_break();
        }
        if self.overflow {
            return Err(BodyError::TooBig);
        }
        if self.bare && self.policy == BareLfPolicy::Reject {
            return Err(BodyError::BareLineBreak);
        }
        if self.long_line {
            return Err(BodyError::LineTooLong);
        }
        Ok(Received {
            raw: self.buf,
            body_start: self.base,
            bare_line_breaks: self.bare,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(policy: BareLfPolicy, input: &[u8]) -> (usize, bool, Result<Received, BodyError>) {
        let mut r = BodyReceiver::new(
            Framing::Data,
            policy,
            10_000,
            1000,
            b"X: y\r\n".to_vec(),
            None,
        );
        let (n, done) = r.feed_data(input);
        (n, done, r.finish())
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_unstuffs() {
        let (n, done, r) = data(BareLfPolicy::Reject, b"a\r\n..b\r\n.c\r\n.\r\nMAIL FROM");
        assert!(done);
        assert_eq!(n, 15);
        let r = r.unwrap();
        assert_eq!(&r.raw[r.body_start..], b"a\r\n.b\r\nc\r\n");
        assert_eq!(&r.raw[..r.body_start], b"X: y\r\n");
    }

    #[test]
    fn empty_message() {
        let (n, done, r) = data(BareLfPolicy::Reject, b".\r\n");
        assert!(done && n == 3);
        assert_eq!(r.unwrap().raw, b"X: y\r\n");
    }

    #[test]
    fn split_across_feeds_byte_by_byte() {
        let input = b"Subject: t\r\n\r\nline\r\n..\r\n.\r\nNEXT";
        let mut r = BodyReceiver::new(
            Framing::Data,
            BareLfPolicy::Reject,
            1000,
            1000,
            Vec::new(),
            None,
        );
        let mut consumed = 0;
        for (i, b) in input.iter().enumerate() {
            let (n, done) = r.feed_data(std::slice::from_ref(b));
            consumed += n;
            if done {
                assert_eq!(i + 1, input.len() - 4);
                break;
            }
        }
        assert_eq!(consumed, input.len() - 4);
        assert_eq!(r.finish().unwrap().raw, b"Subject: t\r\n\r\nline\r\n.\r\n");
    }

    #[test]
    fn smuggling_sequences_do_not_end_data() {
        for seq in [
            &b"a\r\nb\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\nb\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\nb\r.\rMAIL FROM:<x@y>\r\n",
        ] {
            let (n, done, _) = data(BareLfPolicy::Reject, seq);
            assert!(!done, "{seq:?}");
            assert_eq!(n, seq.len());
            let mut whole = seq.to_vec();
            whole.extend_from_slice(b".\r\n");
            let (_, done, r) = data(BareLfPolicy::Reject, &whole);
            assert!(done);
            assert_eq!(r.unwrap_err(), BodyError::BareLineBreak);
            let (_, done, r) = data(BareLfPolicy::Normalize, &whole);
            assert!(done);
            let r = r.unwrap();
            assert!(r.bare_line_breaks);
            let body = &r.raw[r.body_start..];
            assert!(
                !body.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
                "{body:?}"
            );
            assert!(body.ends_with(b"MAIL FROM:<x@y>\r\n"));
        }
    }

    #[test]
    fn normalize_turns_bare_breaks_into_crlf() {
        let (_, done, r) = data(BareLfPolicy::Normalize, b"a\nb\rc\r\r\n.\r\n");
        assert!(done);
        let r = r.unwrap();
        assert_eq!(&r.raw[r.body_start..], b"a\r\nb\r\nc\r\n\r\n");
    }

    #[test]
    fn oversize_is_discarded_but_end_still_found() {
        let mut r = BodyReceiver::new(
            Framing::Data,
            BareLfPolicy::Reject,
            10,
            1000,
            Vec::new(),
            None,
        );
        let (_, done) = r.feed_data(b"0123456789abcdef\r\n");
        assert!(!done && r.doomed());
        let (n, done) = r.feed_data(b"more\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(n, 9);
        assert_eq!(r.finish().unwrap_err(), BodyError::TooBig);
    }

    #[test]
    fn long_text_line() {
        let mut input = vec![b'x'; 999];
        input.extend_from_slice(b"\r\n.\r\n");
        let (_, done, r) = data(BareLfPolicy::Reject, &input);
        assert!(done);
        assert_eq!(r.unwrap_err(), BodyError::LineTooLong);
        let mut ok = vec![b'x'; 998];
        ok.extend_from_slice(b"\r\n.\r\n");
        assert!(data(BareLfPolicy::Reject, &ok).2.is_ok());
    }

    #[test]
    fn bdat_is_raw_and_checks_breaks_across_chunks() {
        let mut r = BodyReceiver::new(
            Framing::Bdat,
            BareLfPolicy::Reject,
            100,
            1000,
            Vec::new(),
            None,
        );
        r.feed_chunk(b".a\r");
        r.feed_chunk(b"\n.\r\n");
        assert_eq!(r.finish().unwrap().raw, b".a\r\n.\r\n");
        let mut r = BodyReceiver::new(
            Framing::Bdat,
            BareLfPolicy::Reject,
            100,
            1000,
            Vec::new(),
            None,
        );
        r.feed_chunk(b"a\r");
        assert_eq!(r.finish().unwrap_err(), BodyError::BareLineBreak);
        let mut r = BodyReceiver::new(
            Framing::Bdat,
            BareLfPolicy::Reject,
            100,
            1000,
            Vec::new(),
            None,
        );
        r.feed_chunk(b"a\nb\r\n");
        assert_eq!(r.finish().unwrap_err(), BodyError::BareLineBreak);
    }

    /// Feeding in arbitrary pieces must give exactly what feeding at once gives.
    #[test]
    fn chunk_boundaries_do_not_matter() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = [b'a', b'.', b'\r', b'\n'];
        for policy in [BareLfPolicy::Reject, BareLfPolicy::Normalize] {
            for framing in [Framing::Data, Framing::Bdat] {
                for _ in 0..3000 {
                    let len = rng.gen_range(0..40);
                    let input: Vec<u8> = (0..len).map(|_| alphabet[rng.gen_range(0..4)]).collect();
                    let mut whole = BodyReceiver::new(framing, policy, 25, 12, Vec::new(), None);
                    let mut parts = BodyReceiver::new(framing, policy, 25, 12, Vec::new(), None);
                    let (n1, d1) = if framing == Framing::Data {
                        whole.feed_data(&input)
                    } else {
                        whole.feed_chunk(&input);
                        (input.len(), false)
                    };
                    let (mut n2, mut d2) = (0, false);
                    while n2 < input.len() && !d2 {
                        let step = rng.gen_range(1..=4).min(input.len() - n2);
                        let piece = &input[n2..n2 + step];
                        if framing == Framing::Data {
                            let (n, d) = parts.feed_data(piece);
                            n2 += n;
                            d2 = d;
                        } else {
                            parts.feed_chunk(piece);
                            n2 += step;
                        }
                    }
                    assert_eq!((n1, d1), (n2, d2), "{input:?}");
                    let (a, b) = (whole.finish(), parts.finish());
                    match (a, b) {
                        (Ok(a), Ok(b)) => {
                            assert_eq!(a.raw, b.raw, "{input:?}");
                            // Whatever the input, stored content has CRLF line breaks only.
                            assert!(
                                !a.raw.windows(2).any(|w| (w[1] == b'\n') != (w[0] == b'\r')),
                                "{input:?}"
                            );
                            assert!(a.raw.last() != Some(&b'\r'), "{input:?}");
                        }
                        (Err(a), Err(b)) => assert_eq!(a, b, "{input:?}"),
                        (a, b) => panic!("{input:?}: {a:?} vs {b:?}"),
                    }
                }
            }
        }
    }
}
