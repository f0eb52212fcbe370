//! `wharf reindex [ACCOUNT]`: an account's search text rebuilt, attachment text (a DOCX here)
//! extracted; an unknown account refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fs;

use common::Env;
use wharf_store::TextField;

/// A DOCX whose text is `word`, base64 with line breaks, built by Python's zipfile.
fn docx_base64(word: &str) -> String {
    let script = "import base64, io, sys, zipfile\n\
        b = io.BytesIO()\n\
        with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:\n\
        \x20   z.writestr('[Content_Types].xml', '<Types/>')\n\
        \x20   z.writestr('word/document.xml', '<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>' + sys.argv[1] + '</w:t></w:r></w:p></w:body></w:document>')\n\
        sys.stdout.write(base64.encodebytes(b.getvalue()).decode())\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, word])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// alice@example.test gets one imported message with `attachment` (a MIME part: its header
/// lines, then a blank line and the body); `wharf reindex alice@example.test` runs; the answer is
/// its output and the UIDs SEARCH BODY finds for `word` in her INBOX.
pub(crate) async fn reindex_attachment(
    env: &Env,
    attachment: &str,
    word: &str,
) -> (String, Vec<u32>) {
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
             see the report\n--B\n{attachment}\n--B--\n"
        ),
    )
    .unwrap();
    let out = env.ok(&["import", "alice@example.test", mbox.to_str().unwrap()]);
    assert!(out.contains("imported 1 messages"), "{out}");
    let reindexed = env.ok(&["reindex", "alice@example.test"]);
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
    let hits = store
        .search_text(inbox.id, TextField::Body, word)
        .await
        .unwrap();
    (reindexed, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_extracts_attachment_text() {
    let env = Env::new();
    let part = format!(
        "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=r.docx\n\
         Content-Disposition: attachment; filename=r.docx\nContent-Transfer-Encoding: base64\n\n{}",
        docx_base64("reindexdocxword")
    );
    let (out, got) = reindex_attachment(&env, &part, "reindexdocxword").await;
    assert!(
        out.contains("1 messages marked, 1 search texts rewritten"),
        "{out}"
    );
    assert!(out.contains("1 messages' attachments extracted"), "{out}");
    assert_eq!(got.len(), 1, "{got:?}");
    // Everything: nothing left to extract, so nothing extracted.
    let out = env.ok(&["reindex"]);
    assert!(out.contains("1 messages marked"), "{out}");
    let err = env.fails(&["reindex", "nobody@example.test"]);
    assert!(err.contains("no account nobody@example.test"), "{err}");
}
