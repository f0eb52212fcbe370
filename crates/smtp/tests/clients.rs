//! Real clients against a real server: Python smtplib (plain, STARTTLS, SMTP_SSL), swaks and curl.
//! Each message is read back through the store and compared byte for byte after the trace headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::*;

async fn smtplib(
    mode: &str,
    port: u16,
    from: &str,
    to: &str,
    msg: &[u8],
    creds: Option<(&str, &str)>,
    opts: &str,
) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), msg).unwrap();
    let port = port.to_string();
    let path = file.path().to_str().unwrap().to_string();
    let mut args = vec![
        script("send.py"),
        mode.into(),
        "127.0.0.1".into(),
        port,
        from.into(),
        to.into(),
        path,
    ];
    if let Some((u, p)) = creds {
        args.push(u.into());
        args.push(p.into());
    }
    if !opts.is_empty() {
        args.push(opts.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out, err) = run("python3", &args, None).await;
    assert!(err.is_empty() || !err.contains("Traceback"), "{err}");
    out.trim().to_string()
}

#[tokio::test]
async fn smtplib_plain_to_mx_is_stored_byte_exact() {
    let s = start().await;
    let msg = message(
        "sender@remote.test",
        ALICE,
        "plain1",
        "Hello Alice.\r\n.leading dot line\r\n\r\nBye.\r\n",
    );
    let out = smtplib(
        "plain",
        s.mx.port(),
        "sender@remote.test",
        ALICE,
        &msg,
        None,
        "",
    )
    .await;
    assert_eq!(out, "OK");
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    let trace = trace_headers(&inbox[0]);
    assert!(
        trace.starts_with(
            "Return-Path: <sender@remote.test>\r\nReceived: from client.test ([127.0.0.1])"
        ),
        "{trace}"
    );
    assert!(
        trace.contains("by mx.example.test (Wharf) with ESMTP id "),
        "{trace}"
    );
    assert!(trace.contains("for <alice@example.test>;"), "{trace}");
    assert!(!trace.contains("version="), "{trace}");
}

#[tokio::test]
async fn smtplib_starttls_to_mx_records_tls_in_received() {
    let s = start().await;
    let msg = message("sender@remote.test", BOB, "tls1", "Over TLS.\r\n");
    assert_eq!(
        smtplib(
            "starttls",
            s.mx.port(),
            "sender@remote.test",
            BOB,
            &msg,
            None,
            ""
        )
        .await,
        "OK"
    );
    let inbox = s.inbox(BOB).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    let trace = trace_headers(&inbox[0]);
    assert!(trace.contains("with ESMTPS id"), "{trace}");
    assert!(trace.contains("(version=TLSv1.3 cipher=TLS13_"), "{trace}");
}

#[tokio::test]
async fn smtplib_submission_ssl_and_starttls_with_login() {
    let s = start().await;
    let msg = message(ALICE, BOB, "sub1", "Submitted over implicit TLS.\r\n");
    assert_eq!(
        smtplib(
            "ssl",
            s.smtps.port(),
            ALICE,
            BOB,
            &msg,
            Some((ALICE, PASSWORD)),
            ""
        )
        .await,
        "OK"
    );
    let msg2 = message(ALICE, BOB, "sub2", "Submitted over STARTTLS.\r\n");
    assert_eq!(
        smtplib(
            "starttls",
            s.submission.port(),
            ALICE,
            BOB,
            &msg2,
            Some((ALICE, PASSWORD)),
            ""
        )
        .await,
        "OK"
    );
    let inbox = s.inbox(BOB).await;
    assert_eq!(inbox.len(), 2);
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    assert_eq!(strip_trace(&inbox[1]), &msg2[..]);
    for raw in &inbox {
        let trace = trace_headers(raw);
        assert!(trace.contains("with ESMTPSA id"), "{trace}");
        assert!(
            trace.contains("(authenticated user alice@example.test)"),
            "{trace}"
        );
        assert!(trace.contains("version=TLSv1."), "{trace}");
    }
}

#[tokio::test]
async fn smtputf8_address_and_8bit_body_are_accepted() {
    let s = start().await;
    s.dir.add_alias("δοκιμή@example.test", CAROL).await.unwrap();
    let msg = "From: χρήστης@remote.test\r\nTo: δοκιμή@example.test\r\nSubject: Καλημέρα\r\n\r\nΓειά σου κόσμε — 8bit body.\r\n"
        .as_bytes()
        .to_vec();
    let out = smtplib(
        "plain",
        s.mx.port(),
        "χρήστης@remote.test",
        "δοκιμή@example.test",
        &msg,
        None,
        "+utf8",
    )
    .await;
    assert_eq!(out, "OK");
    let inbox = s.inbox(CAROL).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    let trace = trace_headers(&inbox[0]);
    assert!(
        trace.starts_with("Return-Path: <χρήστης@remote.test>"),
        "{trace}"
    );
    assert!(trace.contains("with UTF8SMTP id"), "{trace}");
}

#[tokio::test]
async fn utf8_address_without_smtputf8_is_refused() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    let (code, text) = c.cmd("MAIL FROM:<χρήστης@remote.test>").await;
    assert_eq!(code, 553, "{text}");
    assert!(text.contains("5.6.7"));
}

#[tokio::test]
async fn swaks_plain_mx_and_tls_submission() {
    let s = start().await;
    let msg = message("sw@remote.test", ALICE, "swaks1", "Sent by swaks.\r\n");
    let port = s.mx.port().to_string();
    let server = format!("127.0.0.1:{port}");
    let (ok, out, err) = run(
        "swaks",
        &[
            "--server",
            &server,
            "--from",
            "sw@remote.test",
            "--to",
            ALICE,
            "--helo",
            "client.test",
            "--data",
            "-",
        ],
        // swaks always ends the data with its own CRLF before the final dot.
        Some(msg.strip_suffix(b"\r\n").unwrap()),
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let server = format!("127.0.0.1:{}", s.submission.port());
    let msg2 = message(
        ALICE,
        CAROL,
        "swaks2",
        "Sent by swaks with STARTTLS and AUTH LOGIN.\r\n",
    );
    let (ok, out, err) = run(
        "swaks",
        &[
            "--server",
            &server,
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            PASSWORD,
            "--from",
            ALICE,
            "--to",
            CAROL,
            "--helo",
            "client.test",
            "--data",
            "-",
        ],
        Some(msg2.strip_suffix(b"\r\n").unwrap()),
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("235 2.7.0"), "{out}");
    let a = s.inbox(ALICE).await;
    assert_eq!(a.len(), 1);
    assert_eq!(strip_trace(&a[0]), &msg[..]);
    let c = s.inbox(CAROL).await;
    assert_eq!(c.len(), 1);
    assert_eq!(strip_trace(&c[0]), &msg2[..]);
    assert!(trace_headers(&c[0]).contains("ESMTPSA"));
}

#[tokio::test]
async fn curl_plain_mx_and_starttls_submission() {
    let s = start().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let msg = message("curl@remote.test", BOB, "curl1", "Sent by curl.\r\n");
    std::fs::write(file.path(), &msg).unwrap();
    let url = format!("smtp://127.0.0.1:{}/client.test", s.mx.port());
    let path = file.path().to_str().unwrap();
    let (ok, out, err) = run(
        "curl",
        &[
            "-sS",
            &url,
            "--mail-from",
            "curl@remote.test",
            "--mail-rcpt",
            BOB,
            "-T",
            path,
        ],
        None,
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let file2 = tempfile::NamedTempFile::new().unwrap();
    let msg2 = message(
        ALICE,
        BOB,
        "curl2",
        "Sent by curl with STARTTLS and AUTH.\r\n",
    );
    std::fs::write(file2.path(), &msg2).unwrap();
    let url = format!("smtp://127.0.0.1:{}/client.test", s.submission.port());
    let user = format!("{ALICE}:{PASSWORD}");
    let (ok, out, err) = run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            &url,
            "--user",
            &user,
            "--mail-from",
            ALICE,
            "--mail-rcpt",
            BOB,
            "-T",
            file2.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let inbox = s.inbox(BOB).await;
    assert_eq!(inbox.len(), 2);
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    assert_eq!(strip_trace(&inbox[1]), &msg2[..]);
}

#[tokio::test]
async fn curl_to_unknown_user_fails() {
    let s = start().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        message("c@remote.test", "nobody@example.test", "x", "x\r\n"),
    )
    .unwrap();
    let url = format!("smtp://127.0.0.1:{}/client.test", s.mx.port());
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            &url,
            "--mail-from",
            "c@remote.test",
            "--mail-rcpt",
            "nobody@example.test",
            "-T",
            file.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(!ok);
    assert!(err.contains("550"), "{err}");
}

#[tokio::test]
async fn large_message_streams_through_byte_exact() {
    let s = start().await;
    let mut body = String::new();
    for i in 0..40_000 {
        // Lines starting with a dot exercise dot-stuffing on the way in and out.
        body.push_str(&format!(
            "{}{i:06} {}\r\n",
            if i % 7 == 0 { "." } else { "" },
            "l".repeat(68)
        ));
    }
    let msg = message("big@remote.test", ALICE, "large", &body);
    assert!(msg.len() > 3_000_000);
    assert_eq!(
        smtplib(
            "plain",
            s.mx.port(),
            "big@remote.test",
            ALICE,
            &msg,
            None,
            ""
        )
        .await,
        "OK"
    );
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 1);
    assert!(strip_trace(&inbox[0]) == &msg[..], "large message altered");
}
