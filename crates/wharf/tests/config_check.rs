//! `wharf config check`: the checks `serve` makes before binding, without starting anything;
//! and where the configuration file is looked for (`--config`, `WHARF_CONFIG`, ./wharf.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::{BIN, Env};

const BASE: &str = "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n";

#[test]
fn a_good_file_passes_without_creating_anything() {
    let env = Env::new();
    let out = env.ok(&["config", "check"]);
    assert!(out.trim_end().ends_with("wharf.toml: ok"), "{out}");
    assert!(
        !env.data().exists(),
        "config check must not create the data folder"
    );
}

#[test]
fn an_unknown_log_level_is_an_error_with_its_line() {
    let env = Env::empty();
    env.write_config(&format!("{BASE}\n[log]\nlevel = \"verbose\"\n"));
    let err = env.fails(&["config", "check"]);
    assert!(err.contains("wharf.toml:7:1: key `log.level`"), "{err}");
    assert!(err.contains("`verbose` is not a log level"), "{err}");
    // serve refuses it too, before binding anything.
    let err = env.fails(&["serve"]);
    assert!(err.contains("key `log.level`"), "{err}");
}

#[test]
fn unknown_enum_values_are_errors() {
    let env = Env::empty();
    env.write_config(&format!(
        "{BASE}[[listener]]\nprotocol = \"imap\"\ntls = \"sometimes\"\n"
    ));
    let err = env.fails(&["config", "check"]);
    assert!(
        err.contains("wharf.toml:7:7: key `listener[0].tls`"),
        "{err}"
    );
}

#[test]
fn missing_tls_files_are_errors() {
    let env = Env::empty();
    env.write_config(&format!(
        "{BASE}[tls]\ncert = \"missing/cert.pem\"\nkey = \"missing/key.pem\"\n"
    ));
    let err = env.fails(&["config", "check"]);
    assert!(err.contains("wharf.toml:6:1: key `tls.cert`"), "{err}");
    assert!(err.contains("cannot read"), "{err}");
    // Present but not PEM.
    std::fs::create_dir(env.path().join("missing")).unwrap();
    std::fs::write(env.path().join("missing/cert.pem"), "junk").unwrap();
    std::fs::write(env.path().join("missing/key.pem"), "junk").unwrap();
    let err = env.fails(&["config", "check"]);
    assert!(err.contains("key `tls.cert`"), "{err}");
}

#[test]
fn sieve_admin_scripts_must_compile() {
    let env = Env::empty();
    env.write_config(&format!("{BASE}[sieve]\nbefore = \"before.sieve\"\n"));
    let err = env.fails(&["config", "check"]);
    assert!(
        err.contains("key `sieve.before`") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(
        env.path().join("before.sieve"),
        "require \"fileinto\";\nkeep;\nbogus;\n",
    )
    .unwrap();
    let err = env.fails(&["config", "check"]);
    assert!(err.contains("before.sieve:3:1: sieve.before:"), "{err}");
    std::fs::write(env.path().join("before.sieve"), "keep;\n").unwrap();
    env.ok(&["config", "check"]);
}

#[test]
fn a_data_folder_that_cannot_be_created_is_an_error() {
    let env = Env::empty();
    std::fs::write(env.path().join("blocker"), "a file").unwrap();
    env.write_config("[server]\nhostname = \"mail.example.test\"\ndata_dir = \"blocker/data\"\n");
    let err = env.fails(&["config", "check"]);
    assert!(
        err.contains("wharf.toml:3:1: key `server.data_dir`"),
        "{err}"
    );
}

/// Runs `wharf config check` in `cwd` without `--config`.
fn check_in(cwd: &std::path::Path, env_var: Option<&std::path::Path>) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["config", "check"])
        .current_dir(cwd)
        .env_remove("WHARF_CONFIG");
    if let Some(p) = env_var {
        cmd.env("WHARF_CONFIG", p);
    }
    cmd.output().unwrap()
}

#[test]
fn config_search_path() {
    let env = Env::new();
    // ./wharf.toml when it exists.
    let out = check_in(env.path(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "wharf.toml: ok"
    );
    // WHARF_CONFIG wins over ./wharf.toml.
    let other = env.path().join("other.toml");
    std::fs::write(&other, "[log]\nlevel = \"loud\"\n").unwrap();
    let out = check_in(env.path(), Some(&other));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other.toml:2:1"));
    // --config wins over WHARF_CONFIG.
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(env.config())
        .env("WHARF_CONFIG", &other)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The quick start writes `wharf.toml` and `data/` into the repository's folder: git must not
/// pick up their secrets.
#[test]
fn gitignore_covers_what_the_quick_start_writes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for entry in ["/wharf.toml", "/data/"] {
        assert!(lines.contains(&entry), "{entry} missing from .gitignore");
    }
}
