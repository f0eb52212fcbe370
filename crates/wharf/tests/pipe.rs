//! A reader that goes away early (`wharf dns example.org | head -1`) ends the command quietly,
//! by SIGPIPE as Unix tools do, never with a panic about a broken pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::{BIN, Env};

#[test]
fn a_closed_pipe_ends_dns_quietly() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(env.config())
        .args(["dns", "example.test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command has written anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}
