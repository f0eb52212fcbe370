//! Shared by the cross-protocol tests (`e2e_*.rs`): one real `wharf serve` with every listener on
//! an ephemeral 127.0.0.1 port, two accounts made with the CLI, and the Python clients script
//! (`clients.py`) that speaks SMTP, POP3 and IMAP to it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{Env, Server};

pub const PASSWORD: &str = "correct horse battery e2e";
/// Sends over submission (its own address is the envelope and From: sender).
pub const SENDER: &str = "alice@example.test";
/// Receives everything; read over POP3 and IMAP.
pub const READER: &str = "bob@example.test";

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/clients.py");

const CONFIG: &str = "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
[limits]\nshutdown_timeout = 5\n\
[inbound]\nenabled = false\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"submission\"\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"submission\"\ntls = \"implicit\"\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"pop3\"\n\
[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"pop3\"\ntls = \"implicit\"\n";

pub struct Mail {
    pub env: Env,
    pub server: Option<Server>,
    ports: Vec<(String, u16)>,
    /// Where the clients keep what they sent and what they saw.
    pub work: PathBuf,
}

impl Mail {
    /// A new data folder with alice and bob (added by `wharf user add --password-stdin`), and
    /// the server running.
    pub fn new() -> Mail {
        let env = Env::new();
        env.write_config(CONFIG);
        env.ok(&["domain", "add", "example.test"]);
        for user in [SENDER, READER] {
            let out = env.run_with_stdin(
                &["user", "add", user, "--password-stdin"],
                &format!("{PASSWORD}\n"),
            );
            assert!(
                out.status.success(),
                "user add {user}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let list = env.ok(&["user", "list"]);
        assert!(list.contains(SENDER) && list.contains(READER), "{list}");
        let work = env.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let mut mail = Mail {
            env,
            server: None,
            ports: Vec::new(),
            work,
        };
        mail.start();
        mail
    }

    /// Starts `wharf serve` on the existing data folder and learns its ports.
    pub fn start(&mut self) {
        assert!(self.server.is_none(), "already running");
        let mut server = Server::start(
            self.env.path(),
            &["--config", self.env.config().to_str().unwrap(), "serve"],
        );
        self.ports = server.wait_ready();
        let names: Vec<&str> = self.ports.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "smtp",
                "submission",
                "submissions",
                "imap",
                "imaps",
                "pop3",
                "pop3s"
            ]
        );
        self.server = Some(server);
    }

    /// SIGTERM, and the server must exit cleanly.
    pub fn stop(&mut self) {
        let mut server = self.server.take().expect("running");
        server.sigterm();
        let status = server
            .wait_exit(Duration::from_secs(30))
            .expect("exits after SIGTERM");
        assert!(
            status.success(),
            "{status:?}: {}",
            server.rest_of_stderr(Duration::from_secs(1))
        );
    }

    /// SIGKILL: no chance to flush or answer anyone.
    pub fn kill9(&mut self) {
        let mut server = self.server.take().expect("running");
        server.child.kill().unwrap();
        server.child.wait().unwrap();
    }

    pub fn port(&self, name: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.ports))
            .1
    }

    pub fn cafile(&self) -> PathBuf {
        self.env.data().join("tls").join("cert.pem")
    }

    /// key=value arguments every client command takes: ports, certificate, work folder, bob's
    /// credentials (commands that send as alice override `user`).
    pub fn base_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("dir={}", self.work.display()),
            format!("cafile={}", self.cafile().display()),
            format!("user={READER}"),
            format!("password={PASSWORD}"),
        ];
        for (name, port) in &self.ports {
            args.push(format!("{name}={port}"));
        }
        args
    }

    fn command(&self, cmd: &str, extra: &[String]) -> Command {
        let mut c = Command::new("python3");
        c.arg(SCRIPT).arg(cmd).args(self.base_args()).args(extra);
        c
    }

    /// Runs a client command to completion; panics with its output when it fails.
    pub fn py(&self, cmd: &str, extra: &[String]) -> String {
        let out = self.command(cmd, extra).output().expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "clients.py {cmd} {extra:?} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        stdout
    }

    /// Starts a client command in the background (stdout/stderr captured).
    pub fn py_spawn(&self, cmd: &str, extra: &[String]) -> Child {
        self.command(cmd, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs")
    }
}

/// `key=value`
pub fn kv(key: &str, value: impl std::fmt::Display) -> String {
    format!("{key}={value}")
}
