//! Delivery to Postfix (the Debian package) as the receiving MX on loopback: a private instance
//! (own config, queue and Maildir under a temp dir, smtpd on an ephemeral port, STARTTLS with a
//! self-signed certificate), found through the test DNS server; the message lands in the Maildir,
//! received over TLS, with a DKIM signature that verifies; then DANE-EE (RFC 7672) against the
//! same Postfix: a matching TLSA record delivers, a wrong one defers.
//!
//! Needs `/usr/sbin/postfix` (`apt-get install -y postfix`) and root (Postfix's master runs as
//! root); the test fails loudly without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mail_auth::DkimResult;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::Digest;
use std::sync::Arc;
use support::*;
use wharf_outbound::dkim::{Algorithm, DkimSigners};
use wharf_outbound::queue::{QueueStore, QueuedRecipient};
use wharf_outbound::route::RouterConfig;

struct Postfix {
    conf: PathBuf,
    maildir: PathBuf,
    port: u16,
    _tmp: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_postfix() -> Postfix {
    assert!(
        Path::new("/usr/sbin/postfix").exists(),
        "Postfix is required for this test: apt-get install -y postfix"
    );
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // The virtual delivery agent runs as nobody and must reach the Maildir.
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = d.join("conf");
    let maildir = d.join("mail");
    for sub in ["conf", "queue", "data", "mail"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let chown = |p: &Path, owner: &str| {
        let ok = Command::new("chown")
            .arg(owner)
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {owner} {}", p.display());
    };
    chown(&d.join("data"), "postfix");
    chown(&maildir, "65534:65534");
    let port = free_port();
    let master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
    let master: String = master
        .lines()
        .map(|l| {
            if l.starts_with("smtp ") && l.trim_end().ends_with("smtpd") {
                format!("127.0.0.1:{port} inet n - n - - smtpd")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(conf.join("master.cf"), master + "\n").unwrap();
    let _ = std::fs::copy("/etc/postfix/dynamicmaps.cf", conf.join("dynamicmaps.cf"));
    let (cert, key) = {
        let ck = rcgen::generate_simple_self_signed(vec!["mx.p.test".to_string()]).unwrap();
        (ck.cert.pem(), ck.signing_key.serialize_pem())
    };
    std::fs::write(conf.join("cert.pem"), cert).unwrap();
    std::fs::write(conf.join("key.pem"), key).unwrap();
    std::fs::write(conf.join("vmailbox"), "bob@p.test p.test/bob/\n").unwrap();
    let dd = d.display();
    let main = format!(
        "compatibility_level = 3.6
queue_directory = {dd}/queue
data_directory = {dd}/data
myhostname = mx.p.test
mydomain = p.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = p.test
virtual_mailbox_base = {dd}/mail
virtual_mailbox_maps = texthash:{dd}/conf/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
smtpd_tls_cert_file = {dd}/conf/cert.pem
smtpd_tls_key_file = {dd}/conf/key.pem
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
maillog_file = {dd}/maillog
maillog_file_prefixes = {dd}
smtp_dns_support_level = disabled
"
    );
    std::fs::write(conf.join("main.cf"), main).unwrap();
    let out = Command::new("postfix")
        .arg("-c")
        .arg(&conf)
        .arg("start")
        .output()
        .unwrap();
    let pf = Postfix {
        conf,
        maildir,
        port,
        _tmp: tmp,
    };
    assert!(
        out.status.success(),
        "postfix start failed: {} {} (log: {})",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(d_log(&pf)).unwrap_or_default()
    );
    pf
}

fn d_log(pf: &Postfix) -> PathBuf {
    pf.conf.parent().unwrap().join("maillog")
}

#[tokio::test]
async fn delivery_to_postfix_mx_over_starttls_with_dkim() {
    let pf = start_postfix();
    // Wait for smtpd to listen.
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "postfix smtpd did not come up; log: {}",
        std::fs::read_to_string(d_log(&pf)).unwrap_or_default()
    );

    let (signers, keys) = dkim_keys("a.test", &[("pf", Algorithm::Ed25519)]);
    let ed = &keys[0];
    let dns = start_dns(
        Zone::default()
            .mx("p.test", 10, "mx.p.test")
            .a("mx.p.test", "127.0.0.1")
            .txt(&ed.dns_name, &ed.txt_value),
    )
    .await;
    let queue = Arc::new(MemoryQueue::new());
    let rc = RouterConfig {
        nameservers: vec![dns],
        smtp_port: pf.port,
        ..RouterConfig::default()
    };
    let out = test_outbound(&queue, "mail.a.test", rc, |_, _| {}, signers, None);
    let raw = "From: <alice@a.test>\r\nTo: <bob@p.test>\r\nSubject: to postfix\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <pf1@a.test>\r\n\r\nHello Postfix.\r\n.dotted\r\n";
    out.submit(out.new_entry(
        "alice@a.test",
        vec![QueuedRecipient::new("bob@p.test")],
        bytes::Bytes::from(raw),
    ))
    .await
    .unwrap();
    out.run_once().await.unwrap();
    assert!(
        queue.list().await.unwrap().is_empty(),
        "Postfix accepted: {:?}",
        queue.list().await.unwrap()
    );

    let new = pf.maildir.join("p.test/bob/new");
    let mut file = None;
    for _ in 0..300 {
        if let Ok(mut rd) = std::fs::read_dir(&new)
            && let Some(Ok(e)) = rd.next()
        {
            file = Some(e.path());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let file = file.unwrap_or_else(|| {
        panic!(
            "nothing in {}; log: {}",
            new.display(),
            std::fs::read_to_string(d_log(&pf)).unwrap_or_default()
        )
    });
    let stored = std::fs::read(file).unwrap();
    let text = String::from_utf8_lossy(&stored).to_string();
    assert!(text.contains("from mail.a.test"), "{text}");
    assert!(text.contains("(using TLSv1.3"), "received over TLS: {text}");
    assert!(text.contains("\n.dotted\n"), "dot-stuffing round trip");
    // Postfix stores LF line endings; DKIM relaxed canonicalisation works on CRLF lines.
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    assert_eq!(
        dkim_results(dns, crlf.as_bytes()).await,
        vec![DkimResult::Pass]
    );

    // DANE-EE against Postfix's (OpenSSL) TLS: a secure TLSA 3 1 1 of its self-signed
    // certificate authenticates it; a wrong one defers without MAIL FROM.
    let pem = std::fs::read(pf.conf.join("cert.pem")).unwrap();
    let der = CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap();
    let spki = sha2::Sha256::digest(wharf_outbound::dane::select(&der, 1).unwrap()).to_vec();
    for (tlsa, delivered) in [(spki.clone(), true), (vec![0u8; 32], false)] {
        let dns = start_dns(
            Zone::default()
                .mx("p.test", 10, "mx.p.test")
                .a("mx.p.test", "127.0.0.1")
                .secure()
                .tlsa(&format!("_{}._tcp.mx.p.test", pf.port), 3, 1, 1, &tlsa),
        )
        .await;
        let queue = Arc::new(MemoryQueue::new());
        let rc = RouterConfig {
            nameservers: vec![dns],
            smtp_port: pf.port,
            dane: true,
            ..RouterConfig::default()
        };
        let out = test_outbound(
            &queue,
            "mail.a.test",
            rc,
            |_, _| {},
            DkimSigners::new(),
            None,
        );
        out.submit(out.new_entry(
            "alice@a.test",
            vec![QueuedRecipient::new("bob@p.test")],
            bytes::Bytes::from("From: <alice@a.test>\r\nSubject: dane\r\n\r\nDANE.\r\n"),
        ))
        .await
        .unwrap();
        out.run_once().await.unwrap();
        let left = queue.list().await.unwrap();
        if delivered {
            assert!(left.is_empty(), "DANE-authenticated delivery: {left:?}");
        } else {
            let r = &left[0].recipients[0];
            assert_eq!(r.status.as_deref(), Some("4.7.5"));
            assert!(
                r.diagnostic
                    .as_deref()
                    .unwrap_or_default()
                    .contains("DANE: mx.p.test: TLSA 3 1 1 did not match certificate"),
                "{r:?}"
            );
        }
    }
    let mut count = 0;
    for _ in 0..300 {
        count = std::fs::read_dir(&new).map(|rd| rd.count()).unwrap_or(0);
        if count >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count, 2,
        "the DANE message arrived, the refused one did not"
    );
}
