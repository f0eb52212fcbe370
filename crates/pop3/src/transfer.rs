//! How a stored message travels over POP3: CRLF line endings (a bare LF is sent as CRLF, a missing
//! final line ending is added), dot-stuffing, and the terminating `.CRLF`. `transfer_size` counts
//! exactly the octets `Transfer` sends before dot-stuffing, so LIST/STAT sizes always match RETR.
//!
//! `Transfer` produces the wire form in bounded chunks straight from the stored bytes, so a large
//! message is never copied whole a second time.

/// Octets of the message as RETR sends it, before dot-stuffing and without the terminator.
pub fn transfer_size(raw: &[u8]) -> u64 {
    let mut size = 0u64;
    for line in Lines::new(raw) {
        size += line.len() as u64 + 2;
    }
    size
}

/// Splits at LF; each item is a line's content without its CRLF/LF.
struct Lines<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Lines { raw, pos: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.raw[self.pos..];
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                let line = &rest[..i];
                Some(line.strip_suffix(b"\r").unwrap_or(line))
            }
            None => {
                self.pos = self.raw.len();
                Some(rest)
            }
        }
    }
}

/// The dot-stuffed wire form of a message (RETR) or of its headers plus `n` body lines (TOP),
/// ending with `.CRLF`, produced chunk by chunk.
pub struct Transfer<'a> {
    lines: Lines<'a>,
    /// `Some(n)` for TOP: body lines still allowed.
    body_left: Option<u64>,
    in_body: bool,
    finished: bool,
}

impl<'a> Transfer<'a> {
    pub fn retr(raw: &'a [u8]) -> Self {
        Transfer {
            lines: Lines::new(raw),
            body_left: None,
            in_body: false,
            finished: false,
        }
    }

    pub fn top(raw: &'a [u8], body_lines: u64) -> Self {
        Transfer {
            lines: Lines::new(raw),
            body_left: Some(body_lines),
            in_body: false,
            finished: false,
        }
    }

    /// Appends wire bytes to `out` until it holds at least `chunk` octets or the transfer ends
    /// (one line may overshoot). Returns `true` once the terminator has been appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, chunk: usize) -> bool {
        while !self.finished && out.len() < chunk {
            let next = if self.in_body && self.body_left == Some(0) {
                None
            } else {
                self.lines.next()
            };
            match next {
                Some(line) => {
                    if self.in_body {
                        if let Some(left) = self.body_left.as_mut() {
                            *left -= 1;
                        }
                    } else if line.is_empty() {
                        self.in_body = true;
                    }
                    if line.first() == Some(&b'.') {
                        out.push(b'.');
                    }
                    out.extend_from_slice(line);
                    out.extend_from_slice(b"\r\n");
                }
                None => {
                    out.extend_from_slice(b".\r\n");
                    self.finished = true;
                }
            }
        }
        self.finished
    }

    /// The whole wire form at once (tests and small replies).
    pub fn to_vec(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while !self.fill(&mut out, usize::MAX) {}
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_counts_crlf_for_bare_lf_and_missing_final_newline() {
        assert_eq!(transfer_size(b"a\r\nb\r\n"), 6);
        assert_eq!(transfer_size(b"a\nb\n"), 6);
        assert_eq!(transfer_size(b"a\r\nb"), 6);
        assert_eq!(transfer_size(b""), 0);
    }

    #[test]
    fn retr_stuffs_dots_and_normalises() {
        let wire = Transfer::retr(b"Subject: x\n\n.hidden\r\n..two\nlast").to_vec();
        assert_eq!(
            wire,
            b"Subject: x\r\n\r\n..hidden\r\n...two\r\nlast\r\n.\r\n"
        );
        // The size equals the unstuffed octets between the status line and the terminator.
        let unstuffed = b"Subject: x\r\n\r\n.hidden\r\n..two\r\nlast\r\n";
        assert_eq!(
            transfer_size(b"Subject: x\n\n.hidden\r\n..two\nlast"),
            unstuffed.len() as u64
        );
    }

    #[test]
    fn top_sends_headers_blank_line_and_n_lines() {
        let raw = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(Transfer::top(raw, 0).to_vec(), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            Transfer::top(raw, 2).to_vec(),
            b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n"
        );
        assert_eq!(
            Transfer::top(raw, 99).to_vec(),
            Transfer::retr(raw).to_vec()
        );
    }

    #[test]
    fn chunks_concatenate_to_the_whole() {
        let mut raw = Vec::new();
        for i in 0..5000 {
            raw.extend_from_slice(format!(".line {i}\r\n").as_bytes());
        }
        let whole = Transfer::retr(&raw).to_vec();
        let mut t = Transfer::retr(&raw);
        let mut joined = Vec::new();
        loop {
            let mut chunk = Vec::new();
            let done = t.fill(&mut chunk, 1000);
            assert!(chunk.len() < 1000 + 20);
            joined.extend_from_slice(&chunk);
            if done {
                break;
            }
        }
        assert_eq!(joined, whole);
    }
}
