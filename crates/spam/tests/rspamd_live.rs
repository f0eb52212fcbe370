//! The rspamd client against a real rspamd (Debian package `rspamd`), started here as a plain
//! foreground process on a loopback port with its configuration overrides and state in a temp
//! directory (no systemd, no Redis). Skipped, with a note, when `rspamd` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf_spam::rspamd::{RspamdConfig, RspamdRequest, check};

struct Rspamd(Child);

impl Drop for Rspamd {
    /// SIGTERM, not SIGKILL: rspamd's main process then stops its workers (killed hard, it
    /// would leave them running).
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, port: u16) -> Rspamd {
    let local = dir.join("local.d");
    std::fs::create_dir_all(&local).unwrap();
    for sub in ["db", "run", "log"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let other = free_port();
    let proxy = free_port();
    std::fs::write(
        local.join("worker-normal.inc"),
        format!("bind_socket = \"127.0.0.1:{port}\";\ncount = 1;\n"),
    )
    .unwrap();
    std::fs::write(
        local.join("worker-controller.inc"),
        format!("bind_socket = \"127.0.0.1:{other}\";\ncount = 1;\n"),
    )
    .unwrap();
    std::fs::write(
        local.join("worker-proxy.inc"),
        format!("bind_socket = \"127.0.0.1:{proxy}\";\ncount = 1;\n"),
    )
    .unwrap();
    // No network here: fail DNS lookups fast.
    std::fs::write(
        local.join("options.inc"),
        "dns { timeout = 0.5s; retransmits = 1; }\n",
    )
    .unwrap();
    std::fs::write(
        local.join("logging.inc"),
        format!(
            "type = \"file\";\nfilename = \"{}\";\nlevel = \"warning\";\n",
            dir.join("log/rspamd.log").display()
        ),
    )
    .unwrap();
    let var = |k: &str, v: &Path| format!("--var={k}={}", v.display());
    let mut cmd = Command::new("rspamd");
    cmd.arg("-f")
        .args(["-c", "/etc/rspamd/rspamd.conf"])
        .arg(var("LOCAL_CONFDIR", dir))
        .arg(var("DBDIR", &dir.join("db")))
        .arg(var("RUNDIR", &dir.join("run")))
        .arg(var("LOGDIR", &dir.join("log")))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // rspamd refuses to run as root unless told which user to become.
    if is_root() {
        cmd.args(["-u", "root", "-g", "root"]);
    }
    Rspamd(cmd.spawn().expect("spawn rspamd"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn scores_against_real_rspamd() {
    if Command::new("rspamd").arg("--version").output().is_err() {
        eprintln!("SKIP: rspamd is not installed (apt-get install -y rspamd)");
        return;
    }
    let dir = tempfile_dir();
    let port = free_port();
    let _rspamd = start(&dir, port);
    let cfg = RspamdConfig {
        enabled: true,
        address: format!("127.0.0.1:{port}"),
        timeout_ms: 20_000,
        ..RspamdConfig::default()
    };
    let message = b"From: \"PRIZE DEPT\" <winner@lottery.example>\r\nTo: bob@example.org\r\nSubject: YOU HAVE WON 1,000,000 USD CLAIM NOW\r\n\r\nSend your bank details to claim your prize!!!\r\n";
    let rcpt = vec!["bob@example.org".to_string()];
    let req = RspamdRequest {
        ip: Some("192.0.2.1".parse().unwrap()),
        helo: Some("lottery.example"),
        from: Some("winner@lottery.example"),
        rcpt: &rcpt,
        queue_id: Some("TEST1"),
        ..RspamdRequest::default()
    };
    // rspamd takes a while to load its rules; retry until it answers.
    let started = Instant::now();
    let result = loop {
        match check(&cfg, message, &req).await {
            Ok(r) => break r,
            Err(e) if started.elapsed() < Duration::from_secs(90) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("rspamd did not answer: {e}"),
        }
    };
    println!("rspamd: {result:?}");
    assert!(result.score > 0.0, "{result:?}");
    assert!(result.required_score > 0.0);
    assert!(!result.action.is_empty());
    let names: Vec<&str> = result.symbols.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"MISSING_MID"), "{names:?}");
    assert!(names.contains(&"MISSING_DATE"), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wharf-spam-rspamd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
