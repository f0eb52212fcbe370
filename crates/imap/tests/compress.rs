//! COMPRESS=DEFLATE (RFC 4978) over a real socket, with flate2 as the client's compressor: a
//! compressed session works both ways, the switch happens right after the tagged OK, a second
//! COMPRESS is refused, the number of compressed sessions is bounded, and input that inflates
//! to a huge line or is not DEFLATE at all costs the server nothing but that connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use wharf_imap::ImapConfig;

/// A client that speaks plain IMAP until COMPRESS, raw DEFLATE after.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    deflate: Option<(Compress, Decompress)>,
    inflated: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Client {
            r: BufReader::new(s),
            w,
            deflate: None,
            inflated: Vec::new(),
        };
        let greeting = c.until("*");
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        match &mut self.deflate {
            None => self.w.write_all(bytes).unwrap(),
            Some((c, _)) => {
                let mut out = Vec::with_capacity(bytes.len() + 1024);
                c.compress_vec(bytes, &mut out, FlushCompress::Sync)
                    .unwrap();
                self.w.write_all(&out).unwrap();
            }
        }
    }

    fn cmd(&mut self, tag: &str, line: &str) -> String {
        self.send(format!("{tag} {line}\r\n").as_bytes());
        self.until(tag)
    }

    /// Everything up to and including the line starting with `tag ` (or, for `*`, one line).
    fn until(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let Some(line) = self.line() else {
                return all;
            };
            all.push_str(&line);
            if tag == "*" || line.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        if self.deflate.is_none() {
            let mut l = String::new();
            return (self.r.read_line(&mut l).ok()? > 0).then_some(l);
        }
        loop {
            if let Some(i) = self.inflated.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.inflated.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&l).into_owned());
            }
            let mut buf = [0u8; 4096];
            let n = self.r.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            let (_, d) = self.deflate.as_mut().unwrap();
            let mut out = Vec::with_capacity(64 * 1024);
            let mut input = &buf[..n];
            while !input.is_empty() {
                let before = d.total_in();
                d.decompress_vec(input, &mut out, FlushDecompress::None)
                    .unwrap();
                input = &input[(d.total_in() - before) as usize..];
                self.inflated.extend_from_slice(&out);
                out.clear();
            }
        }
    }

    fn compress(&mut self) -> String {
        self.send(b"z COMPRESS DEFLATE\r\n");
        // The tagged OK is the last plaintext line.
        let r = self.until("z");
        if r.contains("z OK") {
            self.deflate = Some((
                Compress::new(Compression::default(), false),
                Decompress::new(false),
            ));
        }
        r
    }
}

fn cfg(max_compressed: usize) -> ImapConfig {
    ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        max_compressed_sessions: max_compressed,
        ..ImapConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_session_works_both_ways() {
    let env = sql_env().await;
    let (server, plain, _tls, _cert) = server(&env, cfg(10)).await;
    tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(plain);
        // Not before login: a stranger gets no compressor state.
        assert!(c.cmd("a", "COMPRESS DEFLATE").starts_with("a BAD"));
        assert!(
            c.cmd("b", &format!("LOGIN \"{USER}\" \"{PASS}\""))
                .contains("b OK")
        );
        assert!(c.cmd("c", "CAPABILITY").contains(" COMPRESS=DEFLATE"));
        assert!(c.cmd("d", "COMPRESS LZW").starts_with("d NO"));
        let r = c.compress();
        assert!(r.ends_with("z OK DEFLATE active\r\n"), "{r}");
        // Compressed from here on, a literal included.
        let msg = format!(
            "Subject: squeezed\r\n\r\n{}\r\n",
            "compress me ".repeat(2000)
        );
        c.send(format!("e APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        let r = c.until("e");
        assert!(r.contains("e OK [APPENDUID"), "{r}");
        assert!(c.cmd("f", "SELECT INBOX").contains("* 1 EXISTS"));
        let r = c.cmd("g", "FETCH 1 BODY.PEEK[]");
        assert!(
            r.contains(&format!("BODY[] {{{}}}\r\n{msg}", msg.len())),
            "{}",
            r.len()
        );
        let r = c.cmd("h", "COMPRESS DEFLATE");
        assert!(r.starts_with("h NO [COMPRESSIONACTIVE]"), "{r}");
        assert!(c.cmd("i", "LOGOUT").contains("* BYE"));
    })
    .await
    .unwrap();
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_sessions_are_bounded_and_bad_input_costs_only_its_connection() {
    let env = sql_env().await;
    let (server, plain, _tls, _cert) = server(&env, cfg(1)).await;
    tokio::task::spawn_blocking(move || {
        let mut first = Client::connect(plain);
        first.cmd("a", &format!("LOGIN \"{USER}\" \"{PASS}\""));
        assert!(first.compress().contains("z OK"));
        // The one permit is taken: the next session goes on uncompressed.
        let mut second = Client::connect(plain);
        second.cmd("a", &format!("LOGIN \"{USER}\" \"{PASS}\""));
        let r = second.compress();
        assert!(r.starts_with("z NO [LIMIT]"), "{r}");
        assert!(second.cmd("b", "NOOP").contains("b OK"));
        // A line that inflates to 10 MB: refused as too long, not held.
        let huge = format!("c NOOP {}\r\nd NOOP\r\n", "x".repeat(10 * 1024 * 1024));
        first.send(huge.as_bytes());
        let r = first.until("d");
        assert!(r.contains("BAD [TOOBIG]") && r.contains("d OK"), "{r}");
        // The first logs out and frees its permit.
        first.cmd("e", "LOGOUT");
        drop(first);
        std::thread::sleep(Duration::from_millis(200));
        let mut third = Client::connect(plain);
        third.cmd("a", &format!("LOGIN \"{USER}\" \"{PASS}\""));
        assert!(third.compress().contains("z OK"));
        // Not DEFLATE at all: that connection ends, nothing else does.
        third
            .w
            .write_all(b"\xff\xff\xff\xff garbage that is not deflate\r\n")
            .unwrap();
        assert!(third.line().is_none());
        assert!(second.cmd("f", "NOOP").contains("f OK"));
    })
    .await
    .unwrap();
    server.shutdown(Duration::from_secs(2)).await;
}
