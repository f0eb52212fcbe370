//! `wharf dkim generate` and `wharf queue …` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Env;

#[test]
fn dkim_generate_stores_a_private_key_and_prints_the_record() {
    let env = Env::new();
    let e = env.fails(&["dkim", "generate", "example.test", "--selector", "s1"]);
    assert!(e.contains("unknown domain example.test"), "{e}");
    env.ok(&["domain", "add", "example.test"]);

    let out = env.ok(&["dkim", "generate", "example.test", "--selector", "s1"]);
    let file = env.data().join("dkim/example.test/s1.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{out}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        out.contains("s1._domainkey.example.test. IN TXT ( \"v=DKIM1; k=ed25519; p="),
        "{out}"
    );
    let value = out
        .lines()
        .find_map(|l| l.strip_prefix("value: "))
        .expect("value line");
    assert!(value.starts_with("v=DKIM1; k=ed25519; p="), "{out}");

    let out = env.ok(&[
        "dkim",
        "generate",
        "example.test",
        "--algo",
        "rsa",
        "--selector",
        "s2",
    ]);
    let value = out.lines().find_map(|l| l.strip_prefix("value: ")).unwrap();
    assert!(value.starts_with("v=DKIM1; k=rsa; p=MII"), "{out}");
    // An RSA-2048 record is longer than one 255-byte string: the zone line splits it.
    assert!(value.len() > 255);
    assert!(out.contains("\" \""), "{out}");

    let e = env.fails(&["dkim", "generate", "example.test", "--selector", "s1"]);
    assert!(e.contains("already exists"), "{e}");
    let e = env.fails(&["dkim", "generate", "example.test", "--selector", "bad.sel"]);
    assert!(e.contains("invalid selector"), "{e}");

    // Without --selector: dated, with the algorithm's letter.
    let out = env.ok(&["dkim", "generate", "example.test"]);
    let name = out.lines().find_map(|l| l.strip_prefix("name:  ")).unwrap();
    let selector = name.split('.').next().unwrap();
    assert_eq!(selector.len(), 7, "{out}");
    assert!(selector.ends_with('e') && selector[..6].bytes().all(|b| b.is_ascii_digit()));
}
