//! Flag changes (STORE) on SQLite, grouped: STOREs that queue while the one writer connection is
//! busy share one write transaction, each inside a savepoint of its own, and are answered after
//! its commit.
//!
//! Why: every write transaction holds SQLite's single writer connection, and STOREs are most of
//! the writes of logged-in IMAP clients (five per round of imaptest's mix, against one APPEND and
//! one EXPUNGE). One transaction per STORE meant one BEGIN, one COMMIT (its pages written to the
//! WAL) and one hand-over of the connection each, and the queue at the connection made STORE's
//! p99 under 50 logged-in sessions worse than Dovecot's (docs/benchmarks.md). A group pays those
//! once. Each STORE keeps its own mod-sequence, its own answer and its own failure: a STORE that
//! fails is rolled back to its savepoint and answered with its error, the others commit. Flag
//! changes are relaxed writes (`Shared::begin_write_relaxed`), grouped or not.
//!
//! With nothing queued a STORE is a group of one (no savepoint). PostgreSQL does not come here:
//! its writers do not share one connection.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::messages::StoredFlags;
use super::{Shared, db};
use crate::model::*;
use crate::{Result, StoreError};

/// Most STOREs one transaction takes (bounds the transaction and the wait of the first).
const MAX_GROUP: usize = 64;
/// STOREs queued before callers wait (back-pressure).
const QUEUE_DEPTH: usize = 1024;

/// A STORE's answer: the flags now set, and the UIDs UNCHANGEDSINCE left alone.
pub(crate) type StoreAnswer = Result<(Vec<FlagUpdate>, Vec<Uid>)>;

pub(crate) struct FlagRequest {
    pub mailbox: MailboxId,
    pub uids: Vec<Uid>,
    pub op: FlagOp,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub unchanged_since: Option<ModSeq>,
    pub reply: oneshot::Sender<StoreAnswer>,
}

/// Starts the task that runs queued STOREs; it ends when the sender is dropped.
pub(crate) fn spawn(shared: Arc<Shared>) -> mpsc::Sender<FlagRequest> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    tokio::spawn(run(shared, rx));
    tx
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<FlagRequest>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        commit_group(&shared, group).await;
    }
}

/// The same failure for every member of a group whose transaction could not begin or commit.
fn shared_failure(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

async fn commit_group(shared: &Shared, group: Vec<FlagRequest>) {
    let mut tx = match shared.begin_write_relaxed().await {
        Ok(tx) => tx,
        Err(e) => {
            for r in group {
                let _ = r.reply.send(Err(shared_failure(&e)));
            }
            return;
        }
    };
    let alone = group.len() == 1;
    let mut done: Vec<(FlagRequest, Result<StoredFlags>)> = Vec::with_capacity(group.len());
    for r in group {
        if !alone && let Err(e) = db::query("SAVEPOINT store").execute(&mut tx).await {
            fail_all(done, r, e);
            return;
        }
        let stored = shared
            .store_flags_in(
                &mut tx,
                r.mailbox,
                &r.uids,
                r.op,
                r.flags,
                &r.keywords,
                r.unchanged_since,
            )
            .await;
        if alone {
            // No savepoint to roll back to: a failed STORE of its own takes the transaction
            // with it (dropped, hence rolled back), so nothing it wrote before failing commits.
            if let Err(e) = stored {
                drop(tx);
                let _ = r.reply.send(Err(e));
                return;
            }
        } else if let Err(e) = end_savepoint(&mut tx, stored.is_ok()).await {
            fail_all(done, r, e);
            return;
        }
        done.push((r, stored));
    }
    match tx.commit().await {
        Ok(()) => {
            for (r, stored) in done {
                let answer = stored.map(|s| shared.stored_flags_committed(r.mailbox, s));
                let _ = r.reply.send(answer);
            }
        }
        Err(e) => {
            for (r, _) in done {
                let _ = r.reply.send(Err(shared_failure(&e)));
            }
        }
    }
}

/// Keeps (`RELEASE`) or undoes (`ROLLBACK TO`, then `RELEASE`) one member's savepoint.
async fn end_savepoint(tx: &mut db::Tx, keep: bool) -> Result<()> {
    if !keep {
        db::query("ROLLBACK TO store").execute(&mut *tx).await?;
    }
    db::query("RELEASE store").execute(&mut *tx).await?;
    Ok(())
}

/// A savepoint statement failed: the transaction is given up (dropping it rolls it back) and
/// every member answered with the failure, `current` with the error itself.
fn fail_all(done: Vec<(FlagRequest, Result<StoredFlags>)>, current: FlagRequest, e: StoreError) {
    for (r, _) in done {
        let _ = r.reply.send(Err(shared_failure(&e)));
    }
    let _ = current.reply.send(Err(e));
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::sql::SqlStore;
    use crate::{NewAccount, PgTimeouts, Store, StoreConfig};

    fn request(
        mailbox: MailboxId,
        uid: Uid,
        flags: Flags,
    ) -> (FlagRequest, oneshot::Receiver<StoreAnswer>) {
        let (reply, answer) = oneshot::channel();
        let r = FlagRequest {
            mailbox,
            uids: vec![uid],
            op: FlagOp::Add,
            flags,
            keywords: Vec::new(),
            unchanged_since: None,
            reply,
        };
        (r, answer)
    }

    /// An account whose INBOX holds `n` messages: (account, INBOX, their UIDs).
    async fn account_with_mail(store: &dyn Store, n: usize) -> (AccountId, MailboxId, Vec<Uid>) {
        store.create_domain("example.com").await.unwrap();
        let a = store
            .create_account(NewAccount {
                address: "flags@example.com".into(),
                secret_hash: "x".into(),
                scram_sha256: String::new(),
                quota_bytes: 0,
            })
            .await
            .unwrap();
        let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
        let mut uids = Vec::new();
        for i in 0..n {
            let raw = Bytes::from(format!("Subject: m{i}\r\n\r\nbody {i}\r\n"));
            let o = store
                .append(inbox.id, raw, Flags::empty(), &[], 1_700_000_000)
                .await
                .unwrap();
            uids.push(o.uid);
        }
        (a.id, inbox.id, uids)
    }

    /// One group: every member keeps its own mod-sequence and answer, and a member that fails
    /// (its mailbox is gone) is rolled back alone while the others commit and are announced.
    #[tokio::test]
    async fn a_group_commits_its_members_and_isolates_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            url: format!("sqlite://{}", dir.path().join("wharf.db").display()),
            blob_dir: dir.path().join("blobs"),
            blob_s3: None,
            blob_grace: std::time::Duration::ZERO,
        };
        let store = SqlStore::connect(&cfg, PgTimeouts::default())
            .await
            .unwrap();
        let (account, inbox, uids) = account_with_mail(&store, 3).await;
        let mut events = store.subscribe(account);
        let (first, first_answer) = request(inbox, uids[0], Flags::SEEN);
        let (bad, bad_answer) = request(i64::MAX, 1, Flags::SEEN);
        let (last, last_answer) = request(inbox, uids[2], Flags::FLAGGED);
        commit_group(&store.shared, vec![first, bad, last]).await;

        let (first_updates, _) = first_answer.await.unwrap().unwrap();
        assert!(bad_answer.await.unwrap().is_err());
        let (last_updates, _) = last_answer.await.unwrap().unwrap();
        assert_eq!(first_updates.len(), 1);
        assert_eq!(last_updates.len(), 1);
        assert!(first_updates[0].modseq < last_updates[0].modseq);
        let index = store.mailbox_index(inbox).await.unwrap();
        let flags: Vec<Flags> = index
            .iter()
            .map(|e| e.flags.difference(Flags::RECENT))
            .collect();
        assert_eq!(flags, vec![Flags::SEEN, Flags::empty(), Flags::FLAGGED]);
        // Both committed members were announced.
        let mut announced = 0;
        while let Ok(ev) = events.try_recv() {
            if matches!(ev, MailboxEvent::Changed { .. }) {
                announced += 1;
            }
        }
        assert_eq!(announced, 2);
    }

    /// STOREs from many sessions at once all land, each with its own mod-sequence.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_stores_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::open_embedded(dir.path()).await.unwrap();
        let (_, inbox, uids) = account_with_mail(store.as_ref(), 64).await;
        let mut set = tokio::task::JoinSet::new();
        for &uid in &uids {
            let store = store.clone();
            set.spawn(async move {
                store
                    .store_flags(inbox, &[uid], FlagOp::Add, Flags::SEEN, &[], None)
                    .await
                    .unwrap()
                    .0[0]
                    .modseq
            });
        }
        let mut modseqs = Vec::new();
        while let Some(m) = set.join_next().await {
            modseqs.push(m.unwrap());
        }
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(modseqs.len(), uids.len());
        let index = store.mailbox_index(inbox).await.unwrap();
        assert!(index.iter().all(|e| e.flags.contains(Flags::SEEN)));
    }
}
