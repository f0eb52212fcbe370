//! A line client for raw protocol transcripts over any stream (plain TCP or TLS): every read has
//! a timeout, so a server that stops answering fails the test instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a test waits for one answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LineClient<S> {
    pub io: BufReader<S>,
}

impl LineClient<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> LineClient<TcpStream> {
        let s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        LineClient::new(s)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineClient<S> {
    pub fn new(s: S) -> Self {
        LineClient {
            io: BufReader::new(s),
        }
    }

    /// One line with its line ending; empty at EOF.
    pub async fn line(&mut self) -> String {
        let mut s = String::new();
        tokio::time::timeout(ANSWER_TIMEOUT, self.io.read_line(&mut s))
            .await
            .expect("the server did not answer in time")
            .expect("reading a line");
        s
    }

    /// Raw bytes up to and including the next LF; empty at EOF.
    pub async fn raw_line(&mut self) -> Vec<u8> {
        let mut l = Vec::new();
        tokio::time::timeout(ANSWER_TIMEOUT, self.io.read_until(b'\n', &mut l))
            .await
            .expect("the server did not answer in time")
            .expect("reading a line");
        l
    }

    /// Raw lines up to and including the line that equals `last` (e.g. b".\r\n").
    pub async fn until_line(&mut self, last: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self.raw_line().await;
            assert!(!l.is_empty(), "EOF before the line {last:?}");
            out.extend_from_slice(&l);
            if l == last {
                return out;
            }
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).await.expect("sending");
        self.io.get_mut().flush().await.expect("flushing");
    }

    /// Sends `cmd` with CRLF and returns the first answer line.
    pub async fn cmd(&mut self, cmd: &str) -> String {
        self.send(format!("{cmd}\r\n").as_bytes()).await;
        self.line().await
    }

    /// Reads until EOF (or error); returns what arrived.
    pub async fn rest(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let _ = tokio::time::timeout(ANSWER_TIMEOUT, self.io.read_to_end(&mut v))
            .await
            .expect("connection not closed in time");
        v
    }

    /// True when the server closes the connection (EOF) before sending anything else.
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut b)).await,
            Ok(Ok(0))
        )
    }

    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }
}
