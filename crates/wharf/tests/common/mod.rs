//! Helpers shared by the binary's tests: run `wharf` in a temp folder, read its output.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wharf");

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A temp folder with a minimal wharf.toml (data in ./data).
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = Env { dir };
        env.write_config(
            "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n",
        );
        env
    }

    pub fn empty() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("wharf.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap();
    }

    /// Runs `wharf --config <cfg> args…` with `stdin` as standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and asserts failure with a one-line error on stderr; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with_stdin(args, "")
    }

    pub fn fails_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with_stdin(args, stdin);
        assert!(
            !out.status.success(),
            "wharf {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
        assert!(lines[0].starts_with("wharf: error: "), "{err}");
        lines[0].to_string()
    }

    /// Adds the domain (when missing) and the account `address` with `PASSWORD`, through the CLI.
    pub fn add_user(&self, address: &str) {
        let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
        let _ = self.run(&["domain", "add", domain]);
        let out = self.run_with_stdin(
            &["user", "add", address, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "user add {address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `wharf --config <this config> serve`, once it is ready: the server and its listeners.
    pub fn serve(&self) -> (Server, Ready) {
        let mut server = Server::start(
            self.path(),
            &["--config", self.config().to_str().unwrap(), "serve"],
        );
        let ready = Ready(server.wait_ready());
        (server, ready)
    }

    pub async fn store(&self) -> std::sync::Arc<dyn wharf_store::Store> {
        wharf_store::open_embedded(&self.data()).await.unwrap()
    }
}

/// The password `Env::add_user` gives.
pub const PASSWORD: &str = "correct horse battery";

/// The listeners of a `ready` line.
pub struct Ready(pub Vec<(String, u16)>);

impl Ready {
    /// The port of the listener named `name`.
    pub fn port(&self, name: &str) -> u16 {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.0))
            .1
    }
}

/// A running `wharf serve` whose stderr lines arrive on a channel.
pub struct Server {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    pub stdout: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(cwd: &Path, args: &[&str]) -> Server {
        Server::start_logging(cwd, args, Some("info"))
    }

    /// `start` with `RUST_LOG` set to `rust_log`, or removed (the config's `[log]` decides).
    pub fn start_logging(cwd: &Path, args: &[&str], rust_log: Option<&str>) -> Server {
        let mut cmd = Command::new(BIN);
        match rust_log {
            Some(level) => cmd.env("RUST_LOG", level),
            None => cmd.env_remove("RUST_LOG"),
        };
        let mut child = cmd
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (otx, orx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if otx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines: rx,
            seen: Vec::new(),
            stdout: orx,
        }
    }

    /// Waits for a stderr line containing `needle`; None if the process ended or time ran out.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The `ready` line's listeners: name → port.
    pub fn wait_ready(&mut self) -> Vec<(String, u16)> {
        let line = self
            .wait_for(" ready", Duration::from_secs(60))
            .unwrap_or_else(|| panic!("no ready line; stderr so far:\n{}", self.seen.join("\n")));
        parse_ready(&line)
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn stdout_text(&self, timeout: Duration) -> String {
        let mut out = Vec::new();
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
        out.join("\n")
    }

    /// All stderr lines until the process ends (for failures).
    pub fn rest_of_stderr(&mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => break,
            }
        }
        self.seen.join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `… ready … listeners=smtp=127.0.0.1:10025/starttls imap=…` → [("smtp", 10025), …]
pub fn parse_ready(line: &str) -> Vec<(String, u16)> {
    let start = line.find("listeners=").expect("listeners field") + "listeners=".len();
    line[start..]
        .split_whitespace()
        .take_while(|w| w.contains('=') && w.contains(':'))
        .map(|w| {
            let (name, rest) = w.split_once('=').unwrap();
            let addr = rest.split('/').next().unwrap();
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            (name.to_string(), port)
        })
        .collect()
}

/// A random offset keeping every standard port (max 995) in 10000..31000, below the kernel's
/// ephemeral range (32768+) where port-0 listeners and outgoing connections of parallel tests live.
pub fn random_offset() -> u16 {
    use rand::Rng;
    rand::thread_rng().gen_range(10_000..30_000)
}

/// Reads SMTP reply lines until the last one (`NNN ` form); returns them joined.
pub fn smtp_reply(r: &mut BufReader<std::net::TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return all;
        }
    }
}
