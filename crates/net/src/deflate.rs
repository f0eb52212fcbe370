//! COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951) both ways over a connection's stream,
//! each write ending in a sync flush so the peer can act on every response at once. Inflated
//! input goes into the connection's usual bounded buffer, so a small compressed input that
//! inflates to a lot is held to the same line and literal limits as plain input.

use std::io;

use bytes::BufMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conn::BoxStream;

/// Compressed octets read at a time.
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct Deflated {
    inner: BoxStream,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed input not inflated yet: `input[pos..]`.
    input: Vec<u8>,
    pos: usize,
    /// The peer's stream ended (its final block), or the socket did.
    ended: bool,
    /// The last inflate filled the buffer it was given: it may hold more output back, which
    /// needs another call even with no new input.
    output_pending: bool,
    out: Vec<u8>,
    /// Reused for inflated output and for compressed input, so a read allocates nothing.
    inflated: Vec<u8>,
    chunk: Vec<u8>,
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad DEFLATE data: {e}"))
}

impl Deflated {
    /// `pending`: octets that arrived after the COMPRESS command and before the switch; they
    /// already belong to the compressed stream.
    pub(crate) fn new(inner: BoxStream, pending: Vec<u8>) -> Deflated {
        Deflated {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            input: pending,
            pos: 0,
            ended: false,
            output_pending: false,
            out: Vec::new(),
            inflated: Vec::new(),
            chunk: Vec::new(),
        }
    }

    /// Inflates into `dst` (at most its remaining room); 0 at the end of the stream.
    /// Cancel-safe: what was read stays in `input` until inflated.
    pub(crate) async fn read_buf<B: BufMut>(&mut self, dst: &mut B) -> io::Result<usize> {
        let room = dst.remaining_mut().min(READ_CHUNK);
        if room == 0 {
            return Ok(0);
        }
        self.inflated.resize(room, 0);
        loop {
            if self.pos < self.input.len() || self.output_pending {
                let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
                let status = self
                    .inflate
                    .decompress(
                        &self.input[self.pos..],
                        &mut self.inflated,
                        FlushDecompress::None,
                    )
                    .map_err(corrupt)?;
                let used = usize::try_from(self.inflate.total_in() - before_in).unwrap_or(0);
                let made = usize::try_from(self.inflate.total_out() - before_out).unwrap_or(0);
                self.pos += used;
                self.output_pending = made == self.inflated.len();
                if self.pos >= self.input.len() {
                    self.input.clear();
                    self.pos = 0;
                }
                if made > 0 {
                    dst.put_slice(&self.inflated[..made]);
                    return Ok(made);
                }
                if status == Status::StreamEnd {
                    self.ended = true;
                    return Ok(0);
                }
                if used > 0 {
                    continue;
                }
            }
            if self.ended {
                return Ok(0);
            }
            self.chunk.resize(READ_CHUNK, 0);
            let n = self.inner.read(&mut self.chunk).await?;
            if n == 0 {
                self.ended = true;
                return Ok(0);
            }
            self.input.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// Compresses `data` and writes it, ending in a sync flush.
    pub(crate) async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.compress(data, FlushCompress::None)?;
        self.compress(&[], FlushCompress::Sync)?;
        let out = std::mem::take(&mut self.out);
        let r = self.inner.write_all(&out).await;
        self.out = out;
        self.out.clear();
        r?;
        self.inner.flush().await
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.compress(&[], FlushCompress::Finish)?;
        let out = std::mem::take(&mut self.out);
        self.inner.write_all(&out).await?;
        self.inner.shutdown().await
    }

    pub(crate) async fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).await
    }

    fn compress(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.out.reserve(data.len() / 2 + 1024);
            let before_in = self.deflate.total_in();
            let before_out = self.out.len();
            self.deflate
                .compress_vec(data, &mut self.out, flush)
                .map_err(corrupt)?;
            let used = usize::try_from(self.deflate.total_in() - before_in).unwrap_or(0);
            data = &data[used..];
            // Done when the input is used up and the last call had room to spare (a full
            // output buffer may hold back flush output).
            if data.is_empty() && self.out.len() < self.out.capacity() {
                return Ok(());
            }
            if used == 0 && self.out.len() == before_out && self.out.len() < self.out.capacity() {
                return Ok(());
            }
        }
    }
}
