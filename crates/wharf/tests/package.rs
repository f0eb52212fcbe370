//! Packaging: the hardened systemd unit in `dist/` passes `systemd-analyze verify` without a
//! warning, and the Debian package `cargo deb` builds from this build installs with dpkg (the
//! `wharf` user, a private /var/lib/wharf, the unit, a conffile only the service can read), and
//! its binary runs as that user: checks the packaged config, then serves mail.
//!
//! Needs systemd-analyze (Debian's systemd), cargo-deb (`cargo install cargo-deb`, done by
//! .ci/run) and root for dpkg. `WHARF_SKIP_PACKAGE=1` skips the dpkg part on developer machines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_systemd_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("dist/wharf.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/wharf --config /etc/wharf/wharf.toml serve"));
    for hardening in [
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wharf",
        "NoNewPrivileges=yes",
        "User=wharf",
    ] {
        assert!(unit.contains(hardening), "{hardening} missing");
    }
    // Verified against this build's binary (verify checks that ExecStart exists).
    let path = dir.path().join("wharf.service");
    std::fs::write(&path, unit.replace("/usr/bin/wharf", common::BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_debian_package_installs_and_its_binary_serves_as_the_wharf_user() {
    if std::env::var_os("WHARF_SKIP_PACKAGE").is_some() {
        eprintln!(
            "\n*** WHARF_SKIP_PACKAGE set: the Debian package is not built or installed ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The package of this very build (debug profile, the binary the other tests use).
    let out = Command::new("cargo")
        .current_dir(root())
        .args([
            "deb",
            "-p",
            "wharf",
            "--no-build",
            "--no-strip",
            "--profile",
            "dev",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .expect("cargo deb (cargo install cargo-deb)");
    assert!(
        out.status.success(),
        "cargo deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let contents = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb)
        .output()
        .unwrap();
    let contents = String::from_utf8_lossy(&contents.stdout);
    for file in [
        "./usr/bin/wharf",
        "./lib/systemd/system/wharf.service",
        "./etc/wharf/wharf.toml",
        "./usr/share/doc/wharf/sieve.md",
    ] {
        assert!(
            contents.contains(file),
            "{file} not in the package:\n{contents}"
        );
    }

    let install = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(
        install.status.success(),
        "dpkg -i (needs root): {}{}",
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    let wharf_uid: u32 = String::from_utf8(
        Command::new("id")
            .args(["-u", "wharf"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .expect("the package created the wharf user");
    let data = std::fs::metadata("/var/lib/wharf").unwrap();
    assert_eq!((data.uid(), data.mode() & 0o777), (wharf_uid, 0o700));
    let conf = std::fs::metadata("/etc/wharf/wharf.toml").unwrap();
    assert_eq!(
        conf.mode() & 0o777,
        0o640,
        "the config is not world-readable"
    );

    // The packaged binary, as the service's user: the packaged config checks out, and with a
    // host name (and loopback ports) it serves mail from a data folder of its own.
    // setpriv execs the binary itself, so the child's pid is the server's (for SIGTERM).
    let as_wharf = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=wharf",
            "--regid=wharf",
            "--init-groups",
            "/usr/bin/wharf",
        ])
        .args(args);
        c
    };
    let check = as_wharf(&["--config", "/etc/wharf/wharf.toml", "config", "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "config check as wharf: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let home = dir.path().join("srv");
    std::fs::create_dir(&home).unwrap();
    let cfg = home.join("wharf.toml");
    std::fs::write(
        &cfg,
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\ntls = \"none\"\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&home, Some(wharf_uid), None).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(wharf_uid), None).unwrap();
    let mut server = as_wharf(&["--config", cfg.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains(" ready"))
        .expect("the packaged binary starts");
    let port = common::parse_ready(&ready)[0].1;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert!(common::smtp_reply(&mut r).starts_with("220 "));
    s.write_all(b"QUIT\r\n").unwrap();
    common::smtp_reply(&mut r);
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let store = std::fs::metadata(home.join("data/wharf.db")).unwrap();
    assert_eq!(
        store.uid(),
        wharf_uid,
        "the store belongs to the service's user"
    );

    let remove = Command::new("dpkg").args(["-r", "wharf"]).output().unwrap();
    assert!(
        remove.status.success(),
        "{}",
        String::from_utf8_lossy(&remove.stderr)
    );
}
