//! DKIM signatures made by another implementation, dkimpy (PyPI `dkimpy`, `pynacl` for
//! Ed25519), verify: RSA-SHA256 and Ed25519-SHA256 (RFC 8463); a changed signed header fails;
//! a signature with `l=` is not trusted (RFC 6376 §8.2: it lets anyone append content). ARC
//! chains (RFC 8617) cross-verify: dkimpy's seal here, ours in dkimpy (with PyPI `authres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use hickory_resolver::config::ResolverOpts;
use wharf_inbound::{Action, Arrival, InboundConfig, Verifier};
use wharf_outbound::dkim::{self, Algorithm};
use wharf_testkit::{Zone, start_dns};

const SIGN: &str = r#"
import sys, dkim
algo, selector, domain, key_path, length = sys.argv[1:6]
msg = sys.stdin.buffer.read()
key = open(key_path, 'rb').read()
sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                include_headers=[b'from', b'to', b'subject', b'date', b'message-id'],
                signature_algorithm=algo.encode(), length=(length == '1'))
sys.stdout.buffer.write(sig + msg)
"#;

/// The key in the form dkimpy reads: PKCS#1 PEM for RSA (via openssl), the base64 32-byte seed
/// for Ed25519 (from the PKCS#8 DER).
fn dkimpy_key(key: &dkim::GeneratedKey, dir: &std::path::Path) -> std::path::PathBuf {
    let pkcs8 = dir.join(format!("{}.p8.pem", key.dns_name));
    std::fs::write(&pkcs8, &key.private_key_pem).unwrap();
    let out = dir.join(format!("{}.dkimpy", key.dns_name));
    match key.algorithm {
        Algorithm::Rsa => {
            let st = Command::new("openssl")
                .args(["rsa", "-traditional", "-in"])
                .arg(&pkcs8)
                .arg("-out")
                .arg(&out)
                .output()
                .expect("openssl");
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
        Algorithm::Ed25519 => {
            let body: String = key
                .private_key_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            // The private key OCTET STRING (04 22 04 20 <seed>): PKCS#8 v1 ends with it, v2
            // (ring's) has the public key after it.
            let at = der
                .windows(4)
                .position(|w| w == [0x04, 0x22, 0x04, 0x20])
                .expect("an Ed25519 PKCS#8 key")
                + 4;
            let seed = &der[at..at + 32];
            std::fs::write(&out, base64::engine::general_purpose::STANDARD.encode(seed)).unwrap();
        }
    }
    out
}

fn dkimpy_sign(
    algo: &str,
    domain: &str,
    key: &std::path::Path,
    length: bool,
    msg: &[u8],
) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(["-c", SIGN, algo, "sel", domain])
        .arg(key)
        .arg(if length { "1" } else { "0" })
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with dkimpy (pip install dkimpy pynacl)");
    child.stdin.take().unwrap().write_all(msg).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dkimpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `dkim=pass` for `domain` (dkimpy adds `i=@domain`, which the header then names).
fn passes(header: &str, domain: &str) -> bool {
    header.contains(&format!("dkim=pass header.d={domain}"))
        || header.contains(&format!("dkim=pass header.i=@{domain}"))
}

#[tokio::test]
async fn dkimpy_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = dkim::generate("py-rsa.test", "sel", Algorithm::Rsa).unwrap();
    let ed = dkim::generate("py-ed.test", "sel", Algorithm::Ed25519).unwrap();
    let dns = start_dns(
        Zone::default()
            .txt(&rsa.dns_name, &rsa.txt_value)
            .txt(&ed.dns_name, &ed.txt_value)
            .txt("_dmarc.py-rsa.test", "v=DMARC1; p=reject")
            .txt("_dmarc.py-ed.test", "v=DMARC1; p=reject"),
    )
    .await;
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    let resolver = wharf_outbound::route::resolver(&[dns], opts).unwrap();
    let v = Verifier::new(resolver, InboundConfig::default(), "mx.example.test").unwrap();
    let rcpts = vec!["alice@example.test".to_string()];
    for (key, domain, algo) in [
        (&rsa, "py-rsa.test", "rsa-sha256"),
        (&ed, "py-ed.test", "ed25519-sha256"),
    ] {
        let key_file = dkimpy_key(key, dir.path());
        let msg = format!(
            "From: <news@{domain}>\r\nTo: <alice@example.test>\r\nSubject: from dkimpy\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <py@{domain}>\r\n\r\nSigned by dkimpy.\r\n"
        );
        let arrival = Arrival {
            ip: "127.0.0.1".parse().unwrap(),
            helo: "client.example.org",
            mail_from: "bounce@elsewhere.test",
            recipients: &rcpts,
            forwarding: false,
        };
        let signed = dkimpy_sign(algo, domain, &key_file, false, msg.as_bytes());
        let verdict = v.check(&arrival, &signed).await;
        assert!(
            passes(&verdict.header, domain),
            "{algo}: {}",
            verdict.header
        );
        assert_eq!(verdict.dmarc, "pass", "{algo}");
        assert_eq!(verdict.action, Action::Deliver);

        // A changed signed header fails.
        let text = String::from_utf8(signed.clone()).unwrap();
        let changed = text.replace("Subject: from dkimpy", "Subject: from someone else");
        let verdict = v.check(&arrival, changed.as_bytes()).await;
        assert!(
            !verdict.header.contains("dkim=pass"),
            "{algo}: {}",
            verdict.header
        );
        assert!(matches!(verdict.action, Action::Reject(_)), "{algo}");

        // l=: a signature that covers only part of the body lets anyone append content under
        // it (RFC 6376 §8.2). Such signatures are not trusted at all, whole body covered or
        // not: neutral, so DMARC cannot pass on them.
        let mut with_l = dkimpy_sign(algo, domain, &key_file, true, msg.as_bytes());
        assert!(
            String::from_utf8_lossy(&with_l).contains("l="),
            "dkimpy wrote l="
        );
        let verdict = v.check(&arrival, &with_l).await;
        assert!(
            verdict.header.contains("dkim=neutral"),
            "{algo} with l=: {}",
            verdict.header
        );
        with_l.extend_from_slice(b"Appended after signing.\r\n");
        let verdict = v.check(&arrival, &with_l).await;
        assert!(
            verdict.header.contains("dkim=neutral"),
            "{algo} with l= and more: {}",
            verdict.header
        );
        assert!(matches!(verdict.action, Action::Reject(_)), "{algo}");
    }
}

const ARC_SIGN: &str = r#"
import sys, dkim
selector, domain, key_path, srv_id = sys.argv[1:5]
msg = sys.stdin.buffer.read()
key = open(key_path, 'rb').read()
headers = dkim.arc_sign(msg, selector.encode(), domain.encode(), key, srv_id.encode(),
                        include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])
sys.stdout.buffer.write(b''.join(headers) + msg)
"#;

const ARC_VERIFY: &str = r#"
import sys, dkim
keys = dict(zip(sys.argv[1::2], (t.encode() for t in sys.argv[2::2])))
def dns(qname, timeout=5):
    return keys.get(qname.decode().rstrip('.'))
cv, results, comment = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dns)
print(cv.decode(), comment)
"#;

fn python(script: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with dkimpy");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dkimpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ARC (RFC 8617) between implementations: a chain dkimpy seals verifies here (arc=pass, and
/// a changed body breaks it), and the set Wharf seals verifies in dkimpy (cv=pass).
#[tokio::test]
async fn arc_chains_cross_verify_with_dkimpy() {
    let dir = tempfile::tempdir().unwrap();
    let py_key = dkim::generate("py-arc.test", "arc", Algorithm::Rsa).unwrap();
    let our_key = dkim::generate("wharf-arc.test", "arc", Algorithm::Rsa).unwrap();
    let dns = start_dns(
        Zone::default()
            .txt(&py_key.dns_name, &py_key.txt_value)
            .txt(&our_key.dns_name, &our_key.txt_value),
    )
    .await;
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    let resolver = wharf_outbound::route::resolver(&[dns], opts).unwrap();
    let rcpts = vec!["alice@example.test".to_string()];
    let arrival = Arrival {
        ip: "127.0.0.1".parse().unwrap(),
        helo: "list.py-arc.test",
        mail_from: "bounce@py-arc.test",
        recipients: &rcpts,
        forwarding: true,
    };
    let original = "Authentication-Results: mx.py-arc.test; spf=pass smtp.mailfrom=news@origin.test\r\n\
        From: <news@origin.test>\r\nTo: <list@py-arc.test>\r\nSubject: via a list\r\n\
        Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <arc@origin.test>\r\n\r\nHello list.\r\n";

    // dkimpy seals as the list (i=1); we verify.
    let py_key_file = dkimpy_key(&py_key, dir.path());
    let sealed = python(
        ARC_SIGN,
        &[
            "arc",
            "py-arc.test",
            py_key_file.to_str().unwrap(),
            "mx.py-arc.test",
        ],
        original.as_bytes(),
    );
    assert!(String::from_utf8_lossy(&sealed).contains("ARC-Seal: i=1;"));
    let v = Verifier::new(
        resolver.clone(),
        InboundConfig::default(),
        "mx.example.test",
    )
    .unwrap();
    let verdict = v.check(&arrival, &sealed).await;
    assert!(verdict.header.contains("arc=pass"), "{}", verdict.header);
    let mut changed = sealed.clone();
    let at = changed.len() - 5;
    changed[at] = b'X';
    let verdict = v.check(&arrival, &changed).await;
    // mail-auth calls a body-hash mismatch of the newest set `neutral`; it never passes.
    assert!(!verdict.header.contains("arc=pass"), "{}", verdict.header);

    // We seal on top (i=2, cv=pass); dkimpy verifies the whole chain with our key.
    let sealer = Verifier::new(resolver, InboundConfig::default(), "mx.wharf-arc.test")
        .unwrap()
        .with_arc_sealer("wharf-arc.test", "arc", our_key.private_key_pem.as_bytes())
        .unwrap();
    let verdict = sealer.check(&arrival, &sealed).await;
    let set = verdict.arc_seal.expect("forwarded mail is sealed");
    assert!(
        set.contains("ARC-Seal: i=2;") && set.contains("cv=pass"),
        "{set}"
    );
    let mut forwarded = set.into_bytes();
    forwarded.extend_from_slice(verdict.header.as_bytes());
    forwarded.extend_from_slice(&sealed);
    let verify = |keys: &[&str]| String::from_utf8(python(ARC_VERIFY, keys, &forwarded)).unwrap();
    let both = verify(&[
        &our_key.dns_name,
        &our_key.txt_value,
        &py_key.dns_name,
        &py_key.txt_value,
    ]);
    assert!(both.starts_with("pass"), "dkimpy: {both}");
    // The check can fail: without our key dkimpy cannot pass our seal.
    let without_ours = verify(&[&py_key.dns_name, &py_key.txt_value]);
    assert!(!without_ours.starts_with("pass"), "dkimpy: {without_ours}");
}
