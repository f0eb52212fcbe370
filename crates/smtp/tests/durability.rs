//! Crash durability (harness = false, it runs its own server process): 16 concurrent clients send
//! messages to a server in a child process, which is killed with SIGKILL at a random moment, then
//! restarted. Every message that got its 250 must be stored exactly once, complete; messages
//! without a 250 may be present at most once, and never truncated.
//!
//! The same executable is the server when WHARF_SMTP_DURABILITY_SERVER names a data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ENV: &str = "WHARF_SMTP_DURABILITY_SERVER";
const CLIENTS: usize = 16;
const PER_CLIENT: usize = 300;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    if let Ok(dir) = std::env::var(ENV) {
        rt.block_on(serve(dir));
        return;
    }
    print!("test durability_under_sigkill ... ");
    rt.block_on(durability_under_sigkill());
    println!("ok");
}

async fn serve(dir: String) {
    use wharf_directory::{Directory, DirectoryConfig};
    use wharf_net::{Limits, ListenerSpec, Server, TlsMode};
    let store = wharf_store::open_embedded(std::path::Path::new(&dir))
        .await
        .unwrap();
    let directory = Directory::new(store, DirectoryConfig::default());
    support::seed(&directory).await;
    let svc = wharf_smtp::SmtpService::new(
        support::test_config(),
        support::HOSTNAME.into(),
        directory,
        wharf_smtp::SmtpRole::Mx,
    );
    let mut server = Server::new(None, Limits::default());
    let spec = ListenerSpec {
        name: "smtp".into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: TlsMode::None,
        proxy_protocol: false,
    };
    let addr = server.bind(spec, Arc::new(svc)).await.unwrap();
    server.start();
    println!("LISTENING {addr}");
    std::future::pending::<()>().await;
}

fn spawn_server(dir: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("bad server output {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

fn body_for(token: &str) -> Vec<u8> {
    let mut b = format!(
        "From: <c@remote.test>\r\nSubject: {token}\r\nMessage-ID: <{token}@client.test>\r\n\r\n"
    )
    .into_bytes();
    for i in 0..40 {
        b.extend_from_slice(
            format!("{token} line {i:02} of a message that must arrive whole or not at all\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(format!("END {token}\r\n").as_bytes());
    b
}

fn rcpt_for(client: usize) -> &'static str {
    if client.is_multiple_of(2) {
        support::ALICE
    } else {
        support::BOB
    }
}

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn reply(&mut self) -> Option<u16> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.get(3) == Some(&b'-') {
                    continue;
                }
                return std::str::from_utf8(line.get(..3)?).ok()?.parse().ok();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(30), self.s.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Sends messages until PER_CLIENT are acknowledged or the server goes away.
async fn client(addr: SocketAddr, id: usize, acked: Arc<Mutex<Vec<String>>>) -> Option<()> {
    let mut c = Client {
        s: TcpStream::connect(addr).await.ok()?,
        buf: Vec::new(),
    };
    (c.reply().await? == 220).then_some(())?;
    c.s.write_all(b"EHLO client.test\r\n").await.ok()?;
    (c.reply().await? == 250).then_some(())?;
    for i in 0..PER_CLIENT {
        let token = format!("c{id:02}m{i:04}");
        let cmds = format!(
            "MAIL FROM:<c@remote.test>\r\nRCPT TO:<{}>\r\nDATA\r\n",
            rcpt_for(id)
        );
        c.s.write_all(cmds.as_bytes()).await.ok()?;
        for want in [250, 250, 354] {
            (c.reply().await? == want).then_some(())?;
        }
        let mut data = body_for(&token);
        data.extend_from_slice(b".\r\n");
        c.s.write_all(&data).await.ok()?;
        if c.reply().await? == 250 {
            acked.lock().unwrap().push(token);
        } else {
            return None;
        }
    }
    Some(())
}

fn kill(child: &mut Child) {
    // Child::kill sends SIGKILL on Unix: no chance to flush or clean up.
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn durability_under_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(tmp.path());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addr, id, acked.clone())))
        .collect();
    // Kill once deliveries are flowing, at a random point after that.
    let start = Instant::now();
    while acked.lock().unwrap().len() < 32 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let extra = Duration::from_millis(rand::random::<u64>() % 800);
    tokio::time::sleep(extra).await;
    kill(&mut child);
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() < CLIENTS * PER_CLIENT,
        "the kill came after every message was sent"
    );

    // Restart on the same data directory: recovery runs, and the service works again.
    let (mut child, addr) = spawn_server(tmp.path());
    let after = Arc::new(Mutex::new(Vec::new()));
    let mut c = Client {
        s: TcpStream::connect(addr).await.unwrap(),
        buf: Vec::new(),
    };
    assert_eq!(c.reply().await, Some(220));
    c.s.write_all(b"EHLO client.test\r\nMAIL FROM:<c@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n").await.unwrap();
    for want in [250, 250, 250, 354] {
        assert_eq!(c.reply().await, Some(want));
    }
    let mut data = body_for("after-restart");
    data.extend_from_slice(b".\r\n");
    c.s.write_all(&data).await.unwrap();
    assert_eq!(c.reply().await, Some(250));
    after.lock().unwrap().push("after-restart".to_string());
    drop(c);
    kill(&mut child);

    // Read everything back through the store.
    let store = wharf_store::open_embedded(tmp.path()).await.unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for who in [support::ALICE, support::BOB] {
        for raw in support::inbox_of(&store, who).await {
            let content = support::strip_trace(&raw);
            let text = String::from_utf8_lossy(content);
            let token = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_else(|| panic!("stored message without subject: {text:?}"))
                .to_string();
            assert_eq!(
                content,
                body_for(&token).as_slice(),
                "half-written or altered message {token}"
            );
            *seen.entry(token).or_default() += 1;
        }
    }
    for token in acked.iter().chain(after.lock().unwrap().iter()) {
        assert_eq!(
            seen.get(token),
            Some(&1),
            "acknowledged message {token} stored {:?} times",
            seen.get(token)
        );
    }
    for (token, n) in &seen {
        assert_eq!(*n, 1, "message {token} stored {n} times");
    }
    let unacked_present = seen.len() - acked.len() - 1;
    print!(
        "[killed after {extra:?}: {} acknowledged, {unacked_present} more stored without their 250] ",
        acked.len()
    );
}
