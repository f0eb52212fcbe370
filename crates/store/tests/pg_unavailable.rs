//! Bad PostgreSQL conditions answer fast (issue 15 item 6): a database that stops answering
//! fails each command within the configured bound with `StoreError::Unavailable`, instead of
//! waiting out a 30–60 s pool timeout; and after the change-notification (LISTEN) connection is
//! lost and restored, subscribers are told to resynchronise.
//!
//! The store reaches PostgreSQL (127.0.0.1:5432) through a loopback TCP relay that the test can
//! freeze (it keeps every socket open and passes nothing on, as a partitioned network does) or
//! sever (it closes every connection, as a restarted server does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use wharf_store::*;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG: &str = "127.0.0.1:5432";

struct Relay {
    port: u16,
    frozen: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (f, c) = (frozen.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let f = f.clone();
                let task = tokio::spawn(async move {
                    if f.load(Ordering::SeqCst) {
                        // Accepted, never answered: the socket stays open, unread.
                        let _held = client;
                        return std::future::pending::<()>().await;
                    }
                    let Ok(server) = TcpStream::connect(PG).await else {
                        return;
                    };
                    relay(client, server, f).await;
                });
                c.lock().unwrap().push(task);
            }
        });
        Relay {
            port,
            frozen,
            conns,
            accept,
        }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::SeqCst);
    }

    /// Closes every relayed connection (new ones still pass).
    fn sever(&self) {
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}

/// Copies both ways until either side closes; once frozen, holds both sockets and passes
/// nothing more.
async fn relay(mut a: TcpStream, mut b: TcpStream, frozen: Arc<AtomicBool>) {
    let (mut ar, mut aw) = a.split();
    let (mut br, mut bw) = b.split();
    let mut up = [0u8; 16384];
    let mut down = [0u8; 16384];
    loop {
        let (n, to_server) = tokio::select! {
            r = ar.read(&mut up) => (r, true),
            r = br.read(&mut down) => (r, false),
        };
        let n = match n {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let w = if to_server {
            bw.write_all(&up[..n]).await
        } else {
            aw.write_all(&down[..n]).await
        };
        if w.is_err() {
            return;
        }
    }
}

struct PgDb {
    name: String,
}

impl PgDb {
    async fn create() -> PgDb {
        let name = format!("wharf_unavail_{:016x}", rand::random::<u64>());
        let mut c = sqlx::PgConnection::connect(PG_ADMIN)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        PgDb { name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(PG_ADMIN).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

const SHORT: PgTimeouts = PgTimeouts {
    acquire: Duration::from_secs(1),
    statement: Duration::from_secs(1),
    heavy_statement: Duration::from_secs(2),
};

async fn store_through(relay: &Relay, db: &PgDb, dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let cfg = StoreConfig {
        url: format!("postgres://postgres@127.0.0.1:{}/{}", relay.port, db.name),
        blob_dir: dir.path().join("blobs"),
        blob_s3: None,
        blob_grace: Duration::ZERO,
    };
    open_with_timeouts(&cfg, SHORT).await.unwrap()
}

#[test]
fn default_limits_suit_interactive_commands() {
    let d = PgTimeouts::default();
    assert!(d.acquire <= Duration::from_secs(5), "{d:?}");
    assert!(d.statement <= Duration::from_secs(5), "{d:?}");
    assert!(d.heavy_statement >= d.statement, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_fails_commands_within_the_bound() {
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let store = store_through(&relay, &db, &dir).await;
    store.create_domain("example.com").await.unwrap();
    let account = store
        .create_account(NewAccount {
            address: "user@example.com".into(),
            secret_hash: String::new(),
            scram_sha256: String::new(),
            quota_bytes: 0,
        })
        .await
        .unwrap();
    let inbox = store
        .get_mailbox(account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();

    relay.freeze(true);
    // Bound: a connection from the pool (1 s) plus one statement (1 s), and slack for a busy
    // machine; the old behaviour waited 30 s for the pool, or for TCP, minutes.
    let bound = Duration::from_secs(4);
    for attempt in 0..3 {
        let t = Instant::now();
        let r = store.mailbox_status(inbox.id).await;
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "attempt {attempt}: {r:?}"
        );
        assert!(t.elapsed() < bound, "attempt {attempt}: {:?}", t.elapsed());
        let t = Instant::now();
        let r = store.create_mailbox(account.id, "Later", None).await;
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "attempt {attempt}: {r:?}"
        );
        assert!(t.elapsed() < bound, "attempt {attempt}: {:?}", t.elapsed());
        let t = Instant::now();
        let r = store.get_account_by_address("user@example.com").await;
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "attempt {attempt}: {r:?}"
        );
        assert!(t.elapsed() < bound, "attempt {attempt}: {:?}", t.elapsed());
    }

    // Once the database answers again, so does the store.
    relay.freeze(false);
    relay.sever();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.mailbox_status(inbox.id).await {
            Ok(s) => {
                assert_eq!(s.messages, 0);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_resync_after_the_notification_connection_comes_back() {
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let store = store_through(&relay, &db, &dir).await;
    store.create_domain("example.com").await.unwrap();
    let account = store
        .create_account(NewAccount {
            address: "user@example.com".into(),
            secret_hash: String::new(),
            scram_sha256: String::new(),
            quota_bytes: 0,
        })
        .await
        .unwrap();
    let mut events = store.subscribe(account.id);
    // Nothing is announced while the connection stays up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events.try_recv().is_err());

    // Every connection drops, the LISTEN one with them.
    relay.sever();
    let got = tokio::time::timeout(Duration::from_secs(15), events.recv())
        .await
        .expect("no resync event after the LISTEN connection came back")
        .unwrap();
    assert_eq!(got, MailboxEvent::MailboxesChanged);
    // And the store works again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.list_mailboxes(account.id).await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The directory cache (`sql/dir_cache.rs`) must not outlive a lost LISTEN connection: a change
/// notified while it was down would otherwise never reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_change_missed_while_listen_was_down_is_still_seen() {
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let through = store_through(&relay, &db, &dir).await;
    let direct_dir = tempfile::tempdir().unwrap();
    let direct = open(&StoreConfig {
        url: format!("postgres://postgres@127.0.0.1:5432/{}", db.name),
        blob_dir: direct_dir.path().join("blobs"),
        blob_s3: None,
        blob_grace: Duration::ZERO,
    })
    .await
    .unwrap();
    direct.create_domain("example.com").await.unwrap();
    // Let that change's notification arrive first: it would empty the cache again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut events = through.subscribe(0);
    // Cached: nobody has this address.
    assert!(
        through
            .get_account_by_address("late@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // The relay is frozen (the notification cannot arrive), the account is created, and then
    // every connection is cut: the notification is lost for good.
    relay.freeze(true);
    direct
        .create_account(NewAccount {
            address: "late@example.com".into(),
            secret_hash: String::new(),
            scram_sha256: String::new(),
            quota_bytes: 0,
        })
        .await
        .unwrap();
    relay.sever();
    relay.freeze(false);
    let _ = tokio::time::timeout(Duration::from_secs(15), events.recv()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(a)) = through.get_account_by_address("late@example.com").await {
            assert_eq!(a.address, "late@example.com");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cache kept its stale answer after the LISTEN connection was lost"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
