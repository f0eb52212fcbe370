//! `Output`: what the session asks the connection loop to write — response bytes, and message
//! bodies as readers the loop copies to the socket in bounded chunks (FETCH BODY[] of a large
//! message is never held whole in the session's output).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// A message body (or a slice of it) to stream: skip `skip` octets of `reader`, then copy `len`.
pub struct BodyPiece {
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    pub skip: u64,
    /// Exactly the octets announced in the literal that precedes this piece.
    pub len: u64,
}

impl std::fmt::Debug for BodyPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyPiece")
            .field("skip", &self.skip)
            .field("len", &self.len)
            .finish()
    }
}

#[derive(Debug)]
pub enum Piece {
    Bytes(Vec<u8>),
    Body(BodyPiece),
}

/// Bytes and body streams, in the order they go out.
#[derive(Debug, Default)]
pub struct Output {
    pub pieces: Vec<Piece>,
}

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if let Some(Piece::Bytes(b)) = self.pieces.last_mut() {
            b.extend_from_slice(data);
        } else {
            self.pieces.push(Piece::Bytes(data.to_vec()));
        }
    }

    pub fn push(&mut self, b: u8) {
        self.extend_from_slice(&[b]);
    }

    pub fn body(&mut self, body: BodyPiece) {
        self.pieces.push(Piece::Body(body));
    }

    pub fn append(&mut self, other: &mut Output) {
        for p in other.pieces.drain(..) {
            match p {
                Piece::Bytes(b) => self.extend_from_slice(&b),
                body => self.pieces.push(body),
            }
        }
    }

    /// Octets held in memory (streamed bodies not counted).
    pub fn buffered(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Bytes(b) => b.len(),
                Piece::Body(_) => 0,
            })
            .sum()
    }

    pub fn has_body(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Body(_)))
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Bytes(b) => b.is_empty(),
            Piece::Body(b) => b.len == 0,
        })
    }

    /// Everything as one buffer, bodies read in full (tests and small outputs only).
    pub async fn into_bytes(self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for p in self.pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::Body(mut body) => {
                    let mut sink = tokio::io::sink();
                    tokio::io::copy(&mut (&mut body.reader).take(body.skip), &mut sink).await?;
                    let start = out.len();
                    (&mut body.reader)
                        .take(body.len)
                        .read_to_end(&mut out)
                        .await?;
                    if (out.len() - start) as u64 != body.len {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "message body shorter than announced",
                        ));
                    }
                }
            }
        }
        Ok(out)
    }
}
