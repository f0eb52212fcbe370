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
    // The key is in the store, sealed with the node-state key the first generation created.
    assert!(!env.data().join("dkim").exists(), "no key file");
    let state_key = env.data().join("state.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&state_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{out}");
    assert_eq!(
        std::fs::read_to_string(&state_key).unwrap().trim().len(),
        64
    );
    for file in ["wharf.db", "wharf.db-wal"] {
        let bytes = std::fs::read(env.data().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(11).any(|w| w == b"PRIVATE KEY"),
            "the PEM is not in {file} in clear"
        );
    }
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
    let listed = env.ok(&["dns", "example.test"]);
    assert!(
        listed.contains("s1._domainkey.example.test.") && listed.contains("s2._domainkey"),
        "{listed}"
    );
    env.ok(&["dkim", "delete", "example.test", "s1"]);
    let e = env.fails(&["dkim", "delete", "example.test", "s1"]);
    assert!(e.contains("no DKIM key with selector s1"), "{e}");
    let listed = env.ok(&["dns", "example.test"]);
    assert!(
        !listed.contains("s1._domainkey") && listed.contains("s2._domainkey"),
        "{listed}"
    );
    // The selector is free again.
    env.ok(&["dkim", "generate", "example.test", "--selector", "s1"]);
    let e = env.fails(&["dkim", "generate", "example.test", "--selector", "bad.sel"]);
    assert!(e.contains("invalid selector"), "{e}");

    // Without --selector: dated, with the algorithm's letter.
    let out = env.ok(&["dkim", "generate", "example.test"]);
    let name = out.lines().find_map(|l| l.strip_prefix("name:  ")).unwrap();
    let selector = name.split('.').next().unwrap();
    assert_eq!(selector.len(), 7, "{out}");
    assert!(selector.ends_with('e') && selector[..6].bytes().all(|b| b.is_ascii_digit()));
}
