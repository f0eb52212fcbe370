//! Remote recipients and the outbound queue boundary (`RemoteHandoff`): submission hands remote
//! recipients over, port 25 never relays, aliases forwarding outside are queued, DSN parameters
//! (RFC 3461) and REQUIRETLS (RFC 8689) reach the queue exactly, and the final 250 depends on the
//! queue's answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use support::*;
use wharf_smtp::{Origin, RemoteHandoff, SmtpConfig};
use wharf_store::queue::{NewQueueEntry, Notify, QueueError, QueueId, QueuedRecipient, Ret};

/// Records every entry with its origin; refuses while `fail` is set.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(NewQueueEntry, Origin)>>,
    fail: AtomicBool,
    released: Mutex<Vec<QueueId>>,
    withdrawn: Mutex<Vec<QueueId>>,
}

#[async_trait]
impl RemoteHandoff for Recorder {
    async fn enqueue(&self, entry: NewQueueEntry, origin: Origin) -> Result<QueueId, QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError::Backend("queue store unavailable".into()));
        }
        let mut got = self.got.lock().unwrap();
        got.push((entry, origin));
        Ok(got.len() as QueueId)
    }
    async fn release(&self, id: QueueId) {
        self.released.lock().unwrap().push(id);
    }
    async fn withdraw(&self, id: QueueId) {
        self.withdrawn.lock().unwrap().push(id);
    }
}

impl Recorder {
    fn messages(&self) -> Vec<NewQueueEntry> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(e, _)| e.clone())
            .collect()
    }
    fn origins(&self) -> Vec<Origin> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o)| o.clone())
            .collect()
    }
}

async fn start_recording() -> (TestServer, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let cfg = SmtpConfig {
        allow_plaintext_auth_on_loopback: true,
        ..test_config()
    };
    let s = start_full(cfg, Some(rec.clone() as Arc<dyn RemoteHandoff>)).await;
    (s, rec)
}

async fn login(s: &TestServer) -> Raw {
    let mut c = Raw::open(s.submission).await;
    c.expect("EHLO client.test", 250).await;
    c.expect(
        &format!("AUTH PLAIN {}", b64(&format!("\0{ALICE}\0{PASSWORD}"))),
        235,
    )
    .await;
    c
}

async fn send_data(c: &mut Raw, msg: &[u8]) -> (u16, String) {
    c.expect("DATA", 354).await;
    c.send(msg).await;
    c.send(b".\r\n").await;
    c.reply().await
}

fn rcpt(address: &str, notify: Option<&str>, orcpt: Option<&str>) -> QueuedRecipient {
    let mut r = QueuedRecipient::new(address);
    r.notify = Notify::from_param(notify);
    r.orcpt = orcpt.map(Into::into);
    r
}

#[tokio::test]
async fn mixed_local_and_remote_message_with_dsn_parameters() {
    let (s, rec) = start_recording().await;
    let mut c = login(&s).await;
    c.expect(
        "MAIL FROM:<alice@example.test> RET=full ENVID=abc+2Bdef",
        250,
    )
    .await;
    c.expect(
        "RCPT TO:<friend@remote.test> NOTIFY=success,FAILURE ORCPT=rfc822;friend+2Bx@remote.test",
        250,
    )
    .await;
    c.expect("RCPT TO:<other@elsewhere.test> NOTIFY=NEVER", 250)
        .await;
    c.expect("RCPT TO:<Friend@remote.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    let msg = message(ALICE, BOB, "mixed", "To both sides.\r\n");
    let (code, text) = send_data(&mut c, &msg).await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("(outbound 1)"), "{text}");
    c.expect("QUIT", 221).await;
    assert_eq!(
        *rec.released.lock().unwrap(),
        [1],
        "250 releases the held entry"
    );
    assert!(rec.withdrawn.lock().unwrap().is_empty());

    let got = rec.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.sender, ALICE);
    assert_eq!(m.envid.as_deref(), Some("abc+def"));
    assert_eq!(m.ret, Some(Ret::Full));
    assert!(!m.require_tls);
    assert_eq!(
        rec.origins(),
        [Origin::Submission {
            user: ALICE.to_string()
        }]
    );
    assert_eq!(
        m.recipients,
        vec![
            rcpt(
                "friend@remote.test",
                Some("SUCCESS,FAILURE"),
                Some("rfc822;friend+x@remote.test")
            ),
            rcpt("other@elsewhere.test", Some("NEVER"), None),
        ]
    );
    // The local copy is the queued one plus the Return-Path of final delivery.
    let inbox = s.inbox(BOB).await;
    assert_eq!(inbox.len(), 1);
    let local = &inbox[0];
    assert!(local.starts_with(b"Return-Path: <alice@example.test>\r\nReceived: from client.test"));
    assert!(m.raw.starts_with(b"Received: from client.test"));
    let rp = b"Return-Path: <alice@example.test>\r\n".len();
    assert_eq!(&local[rp..], &m.raw[..]);
    assert!(m.raw.ends_with(&msg));
}

#[tokio::test]
async fn port_25_never_relays_even_with_a_queue() {
    let (s, rec) = start_recording().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<x@remote.test>", 250).await;
    let text = c.expect("RCPT TO:<friend@remote.test>", 550).await;
    assert!(text.contains("5.7.1"), "{text}");
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    let (code, _) = send_data(&mut c, &message("x@remote.test", ALICE, "mx", "hi\r\n")).await;
    assert_eq!(code, 250);
    assert!(rec.messages().is_empty());
}

#[tokio::test]
async fn without_a_queue_remote_and_forwarding_get_451() {
    let s = start_with(SmtpConfig {
        allow_plaintext_auth_on_loopback: true,
        ..test_config()
    })
    .await;
    let mut c = login(&s).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    let text = c.expect("RCPT TO:<friend@remote.test>", 451).await;
    assert!(text.contains("4.3.0"), "{text}");
    let text = c.expect("RCPT TO:<fwd@example.test>", 451).await;
    assert!(text.contains("4.3.0"), "{text}");
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<x@remote.test>", 250).await;
    c.expect("RCPT TO:<fwd@example.test>", 451).await;
}

#[tokio::test]
async fn malformed_dsn_parameters_get_501() {
    let (s, _rec) = start_recording().await;
    let mut c = Raw::open(s.mx).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(ehlo.contains("DSN"), "{ehlo}");
    for bad in [
        "MAIL FROM:<x@remote.test> RET=BODY",
        "MAIL FROM:<x@remote.test> RET=FULL RET=FULL",
        "MAIL FROM:<x@remote.test> ENVID=a+2",
        "MAIL FROM:<x@remote.test> ENVID=a+0d",
        "MAIL FROM:<x@remote.test> ENVID=",
    ] {
        let text = c.expect(bad, 501).await;
        assert!(text.contains("5.5.4"), "{bad}: {text}");
    }
    c.expect("MAIL FROM:<x@remote.test> RET=HDRS ENVID=ok", 250)
        .await;
    // A fresh session: the error limit (10) would close this one before the list ends.
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<x@remote.test>", 250).await;
    for bad in [
        "RCPT TO:<alice@example.test> NOTIFY=NEVER,DELAY",
        "RCPT TO:<alice@example.test> NOTIFY=DELAY,DELAY",
        "RCPT TO:<alice@example.test> NOTIFY=SOON",
        "RCPT TO:<alice@example.test> ORCPT=alice@example.test",
        "RCPT TO:<alice@example.test> ORCPT=rfc822;a+zz@example.test",
        "RCPT TO:<alice@example.test> NOTIFY=NEVER NOTIFY=NEVER",
    ] {
        let text = c.expect(bad, 501).await;
        assert!(text.contains("5.5.4"), "{bad}: {text}");
    }
    c.expect(
        "RCPT TO:<alice@example.test> NOTIFY=DELAY ORCPT=rfc822;alice@example.test",
        250,
    )
    .await;
}

#[tokio::test]
async fn requiretls_only_under_tls() {
    let (s, rec) = start_recording().await;
    let mut c = login(&s).await;
    let text = c
        .expect("MAIL FROM:<alice@example.test> REQUIRETLS", 530)
        .await;
    assert!(text.contains("5.7.10"), "{text}");
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(!ehlo.contains("REQUIRETLS"), "{ehlo}");

    let login = format!("AUTH PLAIN {}\r\n", b64(&format!("\0{ALICE}\0{PASSWORD}")));
    let msg =
        String::from_utf8(message(ALICE, "friend@remote.test", "rtls", "secret\r\n")).unwrap();
    let body = format!("{msg}.\r\n");
    transcript(
        s.smtps.port(),
        true,
        &[
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Contains("REQUIRETLS"),
            Step::Send(&login),
            Step::Expect(235),
            Step::Send("MAIL FROM:<alice@example.test> REQUIRETLS\r\n"),
            Step::Expect(250),
            Step::Send("RCPT TO:<friend@remote.test>\r\n"),
            Step::Expect(250),
            Step::Send("DATA\r\n"),
            Step::Expect(354),
            Step::Send(&body),
            Step::Expect(250),
            Step::Contains("(outbound 1)"),
        ],
    )
    .await;
    let got = rec.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].require_tls);
    assert_eq!(
        got[0].recipients,
        vec![rcpt("friend@remote.test", None, None)]
    );
}

#[tokio::test]
async fn queue_failure_gives_451_and_nothing_is_stored() {
    let (s, rec) = start_recording().await;
    rec.fail.store(true, Ordering::SeqCst);
    let mut c = login(&s).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<friend@remote.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    let msg = message(ALICE, BOB, "fails", "Not yet.\r\n");
    let (code, text) = send_data(&mut c, &msg).await;
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0"), "{text}");
    assert!(s.inbox(BOB).await.is_empty());
    assert!(rec.messages().is_empty());
    // The client retries once the queue is back, in the same session.
    rec.fail.store(false, Ordering::SeqCst);
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<friend@remote.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    let (code, text) = send_data(&mut c, &msg).await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(s.inbox(BOB).await.len(), 1);
    assert_eq!(rec.messages().len(), 1);
}

/// The queue took the remote part, then storing the local copy fails: the reply is 451 and the
/// held entry is withdrawn, so the client's retry cannot reach the remote recipients twice.
#[tokio::test]
async fn local_failure_after_queueing_withdraws_the_remote_part() {
    let (s, rec) = start_recording().await;
    // Blob writes go through blobs/tmp; a plain file in its place fails them (even for root).
    let tmp = s.tmp.path().join("blobs").join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let mut c = login(&s).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<friend@remote.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    let msg = message(ALICE, BOB, "half", "Local store broken.\r\n");
    let (code, text) = send_data(&mut c, &msg).await;
    assert_eq!(code, 451, "{text}");
    assert_eq!(rec.messages().len(), 1, "the remote part was queued first");
    assert_eq!(*rec.withdrawn.lock().unwrap(), [1]);
    assert!(rec.released.lock().unwrap().is_empty());
    assert!(s.inbox(BOB).await.is_empty());
}

#[tokio::test]
async fn alias_forwarding_outside_is_handed_over_with_bdat() {
    let (s, rec) = start_recording().await;
    s.dir.add_alias("both@example.test", ALICE).await.unwrap();
    s.dir
        .add_alias("both@example.test", "ext@remote.test")
        .await
        .unwrap();
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<x@remote.test>", 250).await;
    c.expect("RCPT TO:<fwd@example.test> NOTIFY=FAILURE", 250)
        .await;
    c.expect("RCPT TO:<both@example.test>", 250).await;
    let msg = message(
        "x@remote.test",
        "fwd@example.test",
        "fwd",
        "Forward me.\r\n",
    );
    c.send(format!("BDAT {} LAST\r\n", msg.len()).as_bytes())
        .await;
    c.send(&msg).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    let got = rec.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.sender, "x@remote.test");
    assert_eq!(rec.origins(), [Origin::Forward]);
    assert_eq!(
        m.recipients,
        vec![
            rcpt(
                "someone@remote.test",
                Some("FAILURE"),
                Some("rfc822;fwd@example.test")
            ),
            rcpt("ext@remote.test", None, Some("rfc822;both@example.test")),
        ]
    );
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].ends_with(&m.raw[..]));
    assert!(m.raw.ends_with(&msg));
}
