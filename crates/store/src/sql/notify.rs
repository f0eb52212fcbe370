//! Change events across nodes sharing one PostgreSQL database (DESIGN §4): every event this node
//! announces is also sent with `pg_notify`, and a listener republishes other nodes' events to
//! local subscribers. Own events are recognised by the node id and skipped (they were published
//! locally already). Notifications lost while the listener reconnects cannot be recovered: once
//! it is back, every local subscriber is told to resynchronise (see `start_listener`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::Shared;
use crate::model::{AccountId, MailboxEvent};
use crate::{Result, StoreError};

const CHANNEL: &str = "wharf_events";
/// Sent by migration 0024's triggers when a directory row changes (see `dir_cache`).
const DIRECTORY_CHANNEL: &str = "wharf_directory";
/// Events waiting to be sent before new ones are dropped (with a warning) rather than queued.
const OUTBOX_DEPTH: usize = 4096;
/// Most events sent by one statement.
const NOTIFY_BATCH: usize = 64;

pub(crate) struct Outbox {
    node: String,
    tx: mpsc::Sender<String>,
}

fn node_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `pg_notify` refuses payloads of 8,000 octets or more; metadata entry names beyond this are
/// left out of the notification (the entries themselves are stored).
const MAX_PAYLOAD: usize = 7_000;

/// Payload: `node:account:mailbox:modseq` for a mailbox change, `node:account:*` for the list,
/// `node:account:m:mailbox:hex(name\nname…)` for METADATA entries (mailbox 0: the server). Names
/// are hex-encoded: they may hold `:`.
fn encode(node: &str, account: AccountId, event: &MailboxEvent) -> String {
    match event {
        MailboxEvent::Changed {
            mailbox_id,
            highest_modseq,
        } => {
            format!("{node}:{account}:{mailbox_id}:{highest_modseq}")
        }
        MailboxEvent::MailboxesChanged => format!("{node}:{account}:*"),
        MailboxEvent::MetadataChanged {
            mailbox_id,
            entries,
        } => {
            let mut hex = String::new();
            let head = format!("{node}:{account}:m:{}:", mailbox_id.unwrap_or(0));
            for (i, e) in entries.iter().enumerate() {
                let sep = if i > 0 { 2 } else { 0 };
                if head.len() + hex.len() + sep + 2 * e.len() > MAX_PAYLOAD {
                    break;
                }
                if i > 0 {
                    hex.push_str("0a");
                }
                for b in e.bytes() {
                    hex.push_str(&format!("{b:02x}"));
                }
            }
            format!("{head}{hex}")
        }
    }
}

fn decode_metadata<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<MailboxEvent> {
    let mailbox: i64 = parts.next()?.parse().ok()?;
    let hex = parts.next()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let entries = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_string).collect()
    };
    Some(MailboxEvent::MetadataChanged {
        mailbox_id: (mailbox != 0).then_some(mailbox),
        entries,
    })
}

fn decode(payload: &str) -> Option<(&str, AccountId, MailboxEvent)> {
    let mut parts = payload.split(':');
    let node = parts.next()?;
    let account = parts.next()?.parse().ok()?;
    let event = match parts.next()? {
        "*" => MailboxEvent::MailboxesChanged,
        "m" => decode_metadata(&mut parts)?,
        mailbox => MailboxEvent::Changed {
            mailbox_id: mailbox.parse().ok()?,
            highest_modseq: parts.next()?.parse().ok()?,
        },
    };
    if parts.next().is_some() {
        return None;
    }
    Some((node, account, event))
}

impl Outbox {
    pub fn send(&self, account: AccountId, event: &MailboxEvent) {
        if self
            .tx
            .try_send(encode(&self.node, account, event))
            .is_err()
        {
            tracing::warn!(
                account,
                "store: event outbox full; other nodes miss one change notification"
            );
        }
    }
}

/// Starts the task that sends this node's events; it ends when the `Outbox` is dropped.
pub(crate) fn start_outbox(pool: AnyPool) -> Outbox {
    let (tx, mut rx) = mpsc::channel::<String>(OUTBOX_DEPTH);
    tokio::spawn(async move {
        let mut waiting = Vec::with_capacity(NOTIFY_BATCH);
        // Everything queued goes in one statement (up to `NOTIFY_BATCH`): under load, many
        // deliveries' events cost one round trip.
        while rx.recv_many(&mut waiting, NOTIFY_BATCH).await > 0 {
            let rows = (0..waiting.len())
                .map(|i| format!("(${})", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT pg_notify($1, p) FROM (VALUES {rows}) AS t(p)");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(CHANNEL);
            for payload in waiting.drain(..) {
                q = q.bind(payload);
            }
            if let Err(e) = q.execute(&pool).await {
                tracing::warn!(error = %e, "store: pg_notify failed; other nodes miss change notifications");
            }
        }
    });
    Outbox {
        node: node_id(),
        tx,
    }
}

/// Pause between two attempts to re-establish the LISTEN connection.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Subscribes to other nodes' events; the task ends once the store is gone.
///
/// Notifications sent while the LISTEN connection is down are lost for good. So once it is back
/// (LISTEN issued again), every local subscriber gets `MailboxEvent::MailboxesChanged`, which
/// tells a session that anything it shows may be stale: an IMAP session marks its selected
/// mailbox dirty and pulls `changes_since` before its next response, as after a lagged
/// receiver. It is sent after the reconnection, not at the loss, so a session's resync cannot
/// fall in the gap and miss changes made during it.
pub(crate) async fn start_listener(url: &str, shared: &Arc<Shared>) -> Result<()> {
    let Some(node) = shared.remote.as_ref().map(|o| o.node.clone()) else {
        return Ok(());
    };
    let mut listener = PgListener::connect(url).await.map_err(StoreError::from)?;
    listener.eager_reconnect(false);
    listener
        .listen_all([CHANNEL, DIRECTORY_CHANNEL])
        .await
        .map_err(StoreError::from)?;
    shared.directory_listener_connected(true);
    let weak: Weak<Shared> = Arc::downgrade(shared);
    tokio::spawn(async move {
        let mut lost = false;
        loop {
            if lost {
                // Any statement reconnects and re-issues LISTEN first.
                match sqlx::query("SELECT 1").execute(&mut listener).await {
                    Ok(_) => {
                        let Some(shared) = weak.upgrade() else {
                            return;
                        };
                        lost = false;
                        tracing::info!(
                            "store: change-notification connection restored; sessions resynchronise"
                        );
                        metrics::counter!("wharf_store_listen_reconnects").increment(1);
                        shared.directory_listener_connected(true);
                        shared.events.publish_all(MailboxEvent::MailboxesChanged);
                    }
                    Err(e) => {
                        if weak.strong_count() == 0 {
                            return;
                        }
                        tracing::warn!(error = %e, "store: change-notification reconnect failed; retrying");
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                        continue;
                    }
                }
            }
            let got = listener.try_recv().await;
            let Some(shared) = weak.upgrade() else {
                return;
            };
            match got {
                Ok(Some(n)) if n.channel() == DIRECTORY_CHANNEL => {
                    if let Some(cache) = &shared.dir_cache {
                        cache.invalidate();
                    }
                }
                Ok(Some(n)) => match decode(n.payload()) {
                    Some((from, _, _)) if from == node => {}
                    Some((_, account, event)) => shared.events.publish(account, event),
                    None => tracing::warn!(
                        payload = n.payload(),
                        "store: malformed change notification ignored"
                    ),
                },
                Ok(None) => {
                    tracing::warn!(
                        "store: change-notification connection lost; reconnecting (events may have been missed)"
                    );
                    shared.directory_listener_connected(false);
                    lost = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store: change-notification listener failed; reconnecting");
                    shared.directory_listener_connected(false);
                    lost = true;
                    drop(shared);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let e = MailboxEvent::Changed {
            mailbox_id: 7,
            highest_modseq: 99,
        };
        assert_eq!(decode(&encode("n1", 3, &e)), Some(("n1", 3, e)));
        let l = MailboxEvent::MailboxesChanged;
        assert_eq!(decode(&encode("n1", 3, &l)), Some(("n1", 3, l)));
        assert_eq!(decode("n1:x:*"), None);
        assert_eq!(decode("n1:1:2:3:4"), None);
        assert_eq!(decode("n1:1:2"), None);
        let m = MailboxEvent::MetadataChanged {
            mailbox_id: Some(5),
            entries: vec!["/private/comment".into(), "/shared/a:b".into()],
        };
        assert_eq!(decode(&encode("n1", 3, &m)), Some(("n1", 3, m)));
        let server = MailboxEvent::MetadataChanged {
            mailbox_id: None,
            entries: vec!["/shared/admin".into()],
        };
        assert_eq!(decode(&encode("n1", 3, &server)), Some(("n1", 3, server)));
        assert_eq!(decode("n1:1:m:0:zz"), None);
        assert_eq!(decode("n1:1:m:0:abc"), None);
        // Names past what pg_notify carries are left out; the payload stays decodable.
        let many = MailboxEvent::MetadataChanged {
            mailbox_id: Some(1),
            entries: (0..100).map(|i| format!("/private/{i:0>60}")).collect(),
        };
        let p = encode("n1", 3, &many);
        assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
        match decode(&p) {
            Some((_, _, MailboxEvent::MetadataChanged { entries, .. })) => {
                assert!(!entries.is_empty() && entries.len() < 100);
            }
            other => panic!("{other:?}"),
        }
    }
}
