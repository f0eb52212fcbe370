//! How a stored message travels over POP3: CRLF line endings (a bare LF is sent as CRLF, a missing
//! final line ending is added), dot-stuffing, and the terminating `.CRLF`. `transfer_size` counts
//! exactly the octets RETR sends before dot-stuffing, so LIST/STAT sizes always match RETR.
//!
//! `MessageStream` is what the connection loop sends: it reads the stored message from a reader
//! in bounded chunks (`READ_CHUNK`) and dot-stuffs on the fly with `Stuffer`, so a session holds
//! at most a few chunks of a message however large it is, and a slow reader of the socket holds
//! up the next read (backpressure). `Transfer` is the same encoding over a message in memory.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Octets read from the stored message at a time while streaming it.
pub const READ_CHUNK: usize = 32 * 1024;

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

/// The dot-stuffed wire form of a message in memory (RETR) or of its headers plus `n` body lines
/// (TOP), ending with `.CRLF`, produced chunk by chunk: the reference `Stuffer` is tested against.
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

/// Dot-stuffing and line-ending normalisation over a message that arrives in pieces of any size
/// (a line, a CRLF, may straddle two pieces). Produces exactly what `Transfer` produces for the
/// concatenated pieces.
#[derive(Debug, Clone)]
pub struct Stuffer {
    /// `Some(n)` for TOP: body lines still allowed.
    body_left: Option<u64>,
    in_body: bool,
    /// The next input octet starts a line.
    at_line_start: bool,
    /// Content octets of the current line so far (a blank line ends the header).
    line_len: u64,
    /// A CR seen last: dropped if an LF follows (CRLF), sent as content otherwise.
    cr_pending: bool,
    /// TOP has all its lines: later input is ignored.
    done: bool,
    /// Octets sent before dot-stuffing, without the terminator.
    sent: u64,
}

impl Stuffer {
    pub fn retr() -> Self {
        Stuffer::new(None)
    }

    pub fn top(body_lines: u64) -> Self {
        Stuffer::new(Some(body_lines))
    }

    fn new(body_left: Option<u64>) -> Self {
        Stuffer {
            body_left,
            in_body: false,
            at_line_start: true,
            line_len: 0,
            cr_pending: false,
            done: false,
            sent: 0,
        }
    }

    /// Octets of the message sent so far, before dot-stuffing (after `finish`, the size RETR
    /// announced when the message is intact).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Encodes the next piece of the message into `out`. Returns `false` once TOP has all the
    /// lines it wants: the rest of the message need not be read.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> bool {
        while let Some((&b, rest)) = input.split_first() {
            if self.done {
                return false;
            }
            if self.at_line_start {
                if self.in_body
                    && let Some(left) = self.body_left.as_mut()
                {
                    if *left == 0 {
                        self.done = true;
                        return false;
                    }
                    *left -= 1;
                }
                self.at_line_start = false;
                self.line_len = 0;
                if b == b'.' {
                    out.push(b'.');
                }
            }
            if self.cr_pending {
                self.cr_pending = false;
                if b != b'\n' {
                    self.content(b"\r", out);
                }
            }
            match b {
                b'\r' => {
                    self.cr_pending = true;
                    input = rest;
                }
                b'\n' => {
                    self.end_line(out);
                    input = rest;
                }
                _ => {
                    // The run of plain octets up to the next CR or LF goes in one copy.
                    let run = input
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(input.len());
                    self.content(&input[..run], out);
                    input = &input[run..];
                }
            }
        }
        !self.done
    }

    /// The message ended: closes its last line (a missing final CRLF is added) and appends the
    /// terminator.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            if self.cr_pending {
                self.cr_pending = false;
                self.content(b"\r", out);
            }
            if !self.at_line_start {
                self.end_line(out);
            }
            self.done = true;
        }
        out.extend_from_slice(b".\r\n");
    }

    fn content(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(bytes);
        self.line_len += bytes.len() as u64;
        self.sent += bytes.len() as u64;
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.sent += 2;
        if !self.in_body && self.line_len == 0 {
            self.in_body = true;
        }
        self.at_line_start = true;
    }
}

/// A stored message on its way to the client: read in `READ_CHUNK` pieces, dot-stuffed, ended
/// with `.CRLF`.
pub struct MessageStream {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    stuffer: Stuffer,
    /// RETR: the size announced in `+OK`; a stored message that yields another size is cut off
    /// without its terminator rather than passed off as complete.
    announced: Option<u64>,
    finished: bool,
    /// One read's worth, allocated once per message.
    buf: Box<[u8]>,
}

impl std::fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("stuffer", &self.stuffer)
            .field("announced", &self.announced)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl MessageStream {
    /// RETR: the whole message, which must come to `announced` octets before stuffing.
    pub fn retr(reader: Box<dyn AsyncRead + Send + Unpin>, announced: u64) -> Self {
        MessageStream {
            reader,
            stuffer: Stuffer::retr(),
            announced: Some(announced),
            finished: false,
            buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// TOP: the header, the blank line and `body_lines` lines of the body.
    pub fn top(reader: Box<dyn AsyncRead + Send + Unpin>, body_lines: u64) -> Self {
        MessageStream {
            reader,
            stuffer: Stuffer::top(body_lines),
            announced: None,
            finished: false,
            buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// Reads the next chunk of the message and appends its wire form to `out` (at most
    /// `2 * READ_CHUNK + 5` octets). `Ok(true)` once the terminator has been appended. An error
    /// (read failure, or a size other than announced) leaves the answer unterminated: the
    /// connection must be closed.
    pub async fn next_chunk(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        if self.finished {
            return Ok(true);
        }
        let n = self.reader.read(&mut self.buf).await?;
        let more = n > 0 && self.stuffer.push(&self.buf[..n], out);
        if more {
            return Ok(false);
        }
        self.stuffer.finish(out);
        self.finished = true;
        if let Some(announced) = self.announced
            && announced != self.stuffer.sent()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "stored message yields {} octets, {announced} were announced",
                    self.stuffer.sent()
                ),
            ));
        }
        Ok(true)
    }

    /// The whole wire form (transcript tests, small messages).
    pub async fn collect(mut self, out: &mut Vec<u8>) -> io::Result<()> {
        while !self.next_chunk(out).await? {}
        Ok(())
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

    /// Feeds `raw` to a `Stuffer` cut at the given offsets.
    fn stuffed_in_pieces(mut stuffer: Stuffer, raw: &[u8], cuts: &[usize]) -> (Vec<u8>, u64) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (raw.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([raw.len()]) {
            if !stuffer.push(&raw[start..cut], &mut out) {
                break;
            }
            start = cut;
        }
        stuffer.finish(&mut out);
        (out, stuffer.sent())
    }

    proptest::proptest! {
        /// The streaming encoder, cut anywhere, produces what the in-memory one produces, and
        /// RETR counts exactly `transfer_size` octets.
        #[test]
        fn stuffer_matches_transfer_cut_anywhere(
            raw in proptest::collection::vec(
                proptest::sample::select(vec![b'.', b'\r', b'\n', b'a', b' ']), 0..400),
            cuts in proptest::collection::vec(0usize..1000, 0..12),
            lines in 0u64..6,
        ) {
            let (retr, sent) = stuffed_in_pieces(Stuffer::retr(), &raw, &cuts);
            proptest::prop_assert_eq!(&retr, &Transfer::retr(&raw).to_vec());
            proptest::prop_assert_eq!(sent, transfer_size(&raw));
            let (top, _) = stuffed_in_pieces(Stuffer::top(lines), &raw, &cuts);
            proptest::prop_assert_eq!(&top, &Transfer::top(&raw, lines).to_vec());
        }
    }

    /// A reader that hands out the message in pieces of the given sizes, like a slow disk.
    struct Pieces(Vec<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if !self.0.is_empty() {
                let piece = self.0.remove(0);
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    self.0.insert(0, piece[n..].to_vec());
                }
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn stream_stuffs_a_dot_and_a_crlf_split_across_reads() {
        let pieces = vec![
            b"Subject: s\r\n\r\nline\r".to_vec(),
            b"\n.dot at a read edge\r\n".to_vec(),
            b"last".to_vec(),
        ];
        let raw = pieces.concat();
        let size = transfer_size(&raw);
        let mut out = Vec::new();
        MessageStream::retr(Box::new(Pieces(pieces)), size)
            .collect(&mut out)
            .await
            .unwrap();
        assert_eq!(out, Transfer::retr(&raw).to_vec());
        assert!(out.windows(6).any(|w| w == b"\n..dot"));
    }

    #[tokio::test]
    async fn stream_of_another_size_than_announced_is_not_terminated() {
        let raw = b"Subject: s\r\n\r\nbody\r\n".to_vec();
        let size = transfer_size(&raw);
        let mut out = Vec::new();
        let err = MessageStream::retr(Box::new(Pieces(vec![raw])), size + 1)
            .collect(&mut out)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn top_stops_reading_once_it_has_its_lines() {
        let pieces = vec![b"A: 1\r\n\r\nl1\r\nl2\r\n".to_vec(), b"l3\r\n".to_vec()];
        let mut stream = MessageStream::top(Box::new(Pieces(pieces)), 1);
        let mut out = Vec::new();
        assert!(stream.next_chunk(&mut out).await.unwrap());
        assert_eq!(out, b"A: 1\r\n\r\nl1\r\n.\r\n");
    }
}
