//! `wharf reindex [ACCOUNT]`: an account's search text rebuilt, attachment text (a PDF here)
//! extracted; an unknown account refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::Env;
use wharf_store::TextField;

/// A one-page PDF showing `text` (ASCII only, so it travels unencoded), with a correct
/// cross-reference table.
fn pdf(text: &str) -> String {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{o}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for off in offsets {
        out.push_str(&format!("{off:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_extracts_attachment_text() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    let out = env.run_with_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "correct horse battery\n",
    );
    assert!(out.status.success());
    let mbox = env.path().join("saved.mbox");
    fs::write(
        &mbox,
        format!(
            "From bob@example.org Sat Jan  3 01:05:34 1996\n\
             From: bob@example.org\nSubject: report\nMIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\n\
             see the report\n--B\nContent-Type: application/pdf; name=r.pdf\n\
             Content-Disposition: attachment; filename=r.pdf\n\n{}\n--B--\n",
            pdf("reindexpdfword")
        ),
    )
    .unwrap();
    let out = env.ok(&["import", "alice@example.test", mbox.to_str().unwrap()]);
    assert!(out.contains("imported 1 messages"), "{out}");
    let out = env.ok(&["reindex", "alice@example.test"]);
    assert!(
        out.contains("1 messages marked, 1 search texts rewritten"),
        "{out}"
    );
    assert!(out.contains("1 messages' attachments extracted"), "{out}");
    let store = env.store().await;
    let account = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = store
        .get_mailbox(account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let got = store
        .search_text(inbox.id, TextField::Body, "reindexpdfword")
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    // Everything: nothing left to extract, so nothing extracted.
    let out = env.ok(&["reindex"]);
    assert!(out.contains("1 messages marked"), "{out}");
    let err = env.fails(&["reindex", "nobody@example.test"]);
    assert!(err.contains("no account nobody@example.test"), "{err}");
}
