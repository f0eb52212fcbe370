//! The SQL store: one implementation of `Store` serving SQLite (embedded, through rusqlite) and
//! PostgreSQL (scale-out, through sqlx) from the same queries (`db` runs them on either). The
//! dialects differ only where `Dialect::pick` chooses a statement: row locks (`FOR UPDATE`,
//! meaningless with SQLite's single writer), the full-text index, and transaction start.
//!
//! Locking discipline (PostgreSQL): every transaction that changes an account's mailboxes first
//! locks that account's row; a batch touching several accounts locks them in ascending id order.
//! Mailbox and blob rows are only touched under that lock, so lock cycles cannot form. SQLite has
//! a single writer connection and serialises everything.

mod acl;
mod admin;
mod app_passwords;
mod attachments;
pub mod backup;
mod backup_pg;
mod blob_life;
mod db;
mod dir_cache;
mod directory;
mod flag_batch;
mod mailboxes;
mod messages;
mod metadata;
mod node_state;
mod nodes;
mod notify;
mod queue;
mod search;
mod sieve;
mod spam;
mod store_trait;
mod tally;
mod urlauth;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use tokio::sync::{Mutex, mpsc};

use crate::blob::{BlobStore, FsBlobStore, SyncMode};
use crate::events::EventHub;
use crate::model::*;
use crate::{Result, StoreError};

pub(crate) use db::{Durability, Pool, Row, Tx};

/// Files younger than this may belong to a write still in progress (in this or another process)
/// and are left to a later sweep.
const SWEEP_GRACE: Duration = Duration::from_secs(3600);
/// Hashes checked per query when collecting garbage.
const GC_CHUNK: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::AlreadyExists(db.message().to_string())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Invalid(db.message().to_string())
            }
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
            {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// Everything the request paths and the group-commit writer share.
pub(crate) struct Shared {
    pub dialect: Dialect,
    /// SQLite: the one writer connection. PostgreSQL: the pool.
    pub writer: Pool,
    /// SQLite: WAL readers that never wait for the writer. PostgreSQL: the same pool.
    pub reader: Pool,
    pub blobs: Arc<dyn BlobStore>,
    pub events: EventHub,
    /// How long a blob stays after its last reference went (see `blob_life`).
    pub blob_grace: Duration,
    /// PostgreSQL: forwards this node's events to the others (see `notify`).
    pub remote: Option<notify::Outbox>,
    /// PostgreSQL: directory rows read once and kept until a change is notified (`dir_cache`).
    pub dir_cache: Option<dir_cache::DirCache>,
    /// SQLite: the database's `-wal` file, which the group commit syncs itself (`sync_wal`).
    pub wal_path: Option<std::path::PathBuf>,
    /// SQLite: per mailbox, the lowest UID no session of this process has claimed as `\Recent`
    /// (see `claim_recent_local`), with the UIDVALIDITY it belongs to: SQLite reuses the id of
    /// a deleted mailbox, and a re-created one must not inherit the floor (its UIDVALIDITY is new).
    pub recent_floors: Mutex<HashMap<MailboxId, (i64, i64)>>,
}

/// The `Store` implementation for both SQL backends.
pub struct SqlStore {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<writer::WriteJob>,
    /// SQLite: STOREs grouped into shared write transactions (`flag_batch`).
    flag_groups: Option<mpsc::Sender<flag_batch::FlagRequest>>,
}

fn migrator(dialect: Dialect) -> Migrator {
    let files: [(i64, &'static str, &'static str); 27] = match dialect {
        Dialect::Sqlite => [
            (
                1,
                "init",
                include_str!("../../migrations/sqlite/0001_init.sql"),
            ),
            (
                2,
                "queue",
                include_str!("../../migrations/sqlite/0002_queue.sql"),
            ),
            (
                3,
                "entry columns",
                include_str!("../../migrations/sqlite/0003_entry_columns.sql"),
            ),
            (
                4,
                "report tallies",
                include_str!("../../migrations/sqlite/0004_report_tallies.sql"),
            ),
            (
                5,
                "blob lifecycle",
                include_str!("../../migrations/sqlite/0005_blob_lifecycle.sql"),
            ),
            (
                6,
                "subscriptions",
                include_str!("../../migrations/sqlite/0006_subscriptions.sql"),
            ),
            (
                7,
                "header text",
                include_str!("../../migrations/sqlite/0007_header_text.sql"),
            ),
            (
                8,
                "tombstone horizon",
                include_str!("../../migrations/sqlite/0008_tombstone_horizon.sql"),
            ),
            (
                9,
                "nodes",
                include_str!("../../migrations/sqlite/0009_nodes.sql"),
            ),
            (
                10,
                "save date",
                include_str!("../../migrations/sqlite/0010_save_date.sql"),
            ),
            (
                11,
                "message ids",
                include_str!("../../migrations/sqlite/0011_message_ids.sql"),
            ),
            (
                12,
                "released messages",
                include_str!("../../migrations/sqlite/0012_released_messages.sql"),
            ),
            (
                13,
                "sieve",
                include_str!("../../migrations/sqlite/0013_sieve.sql"),
            ),
            (
                14,
                "admin roles",
                include_str!("../../migrations/sqlite/0014_admin_roles.sql"),
            ),
            (
                15,
                "spam filter",
                include_str!("../../migrations/sqlite/0015_spam.sql"),
            ),
            (
                16,
                "search index",
                include_str!("../../migrations/sqlite/0016_search_index.sql"),
            ),
            (
                17,
                "app passwords",
                include_str!("../../migrations/sqlite/0017_app_passwords.sql"),
            ),
            (
                18,
                "attachment text",
                include_str!("../../migrations/sqlite/0018_attachment_text.sql"),
            ),
            (
                19,
                "imap metadata",
                include_str!("../../migrations/sqlite/0019_imap_metadata.sql"),
            ),
            (
                20,
                "node state",
                include_str!("../../migrations/sqlite/0020_node_state.sql"),
            ),
            (
                21,
                "drop word index",
                include_str!("../../migrations/sqlite/0021_drop_word_index.sql"),
            ),
            (
                22,
                "mailbox acl",
                include_str!("../../migrations/sqlite/0022_mailbox_acl.sql"),
            ),
            (
                23,
                "urlauth keys",
                include_str!("../../migrations/sqlite/0023_urlauth_keys.sql"),
            ),
            (
                24,
                "directory notify",
                include_str!("../../migrations/sqlite/0024_directory_notify.sql"),
            ),
            (
                25,
                "trigram merge",
                include_str!("../../migrations/sqlite/0025_trigram_merge.sql"),
            ),
            (
                26,
                "stem index",
                include_str!("../../migrations/sqlite/0026_stem_index.sql"),
            ),
            (
                27,
                "message uid index",
                include_str!("../../migrations/sqlite/0027_message_uid_index.sql"),
            ),
        ],
        Dialect::Postgres => [
            (
                1,
                "init",
                include_str!("../../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "queue",
                include_str!("../../migrations/postgres/0002_queue.sql"),
            ),
            (
                3,
                "entry columns",
                include_str!("../../migrations/postgres/0003_entry_columns.sql"),
            ),
            (
                4,
                "report tallies",
                include_str!("../../migrations/postgres/0004_report_tallies.sql"),
            ),
            (
                5,
                "blob lifecycle",
                include_str!("../../migrations/postgres/0005_blob_lifecycle.sql"),
            ),
            (
                6,
                "subscriptions",
                include_str!("../../migrations/postgres/0006_subscriptions.sql"),
            ),
            (
                7,
                "header text",
                include_str!("../../migrations/postgres/0007_header_text.sql"),
            ),
            (
                8,
                "tombstone horizon",
                include_str!("../../migrations/postgres/0008_tombstone_horizon.sql"),
            ),
            (
                9,
                "nodes",
                include_str!("../../migrations/postgres/0009_nodes.sql"),
            ),
            (
                10,
                "save date",
                include_str!("../../migrations/postgres/0010_save_date.sql"),
            ),
            (
                11,
                "message ids",
                include_str!("../../migrations/postgres/0011_message_ids.sql"),
            ),
            (
                12,
                "released messages",
                include_str!("../../migrations/postgres/0012_released_messages.sql"),
            ),
            (
                13,
                "sieve",
                include_str!("../../migrations/postgres/0013_sieve.sql"),
            ),
            (
                14,
                "admin roles",
                include_str!("../../migrations/postgres/0014_admin_roles.sql"),
            ),
            (
                15,
                "spam filter",
                include_str!("../../migrations/postgres/0015_spam.sql"),
            ),
            (
                16,
                "search index",
                include_str!("../../migrations/postgres/0016_search_index.sql"),
            ),
            (
                17,
                "app passwords",
                include_str!("../../migrations/postgres/0017_app_passwords.sql"),
            ),
            (
                18,
                "attachment text",
                include_str!("../../migrations/postgres/0018_attachment_text.sql"),
            ),
            (
                19,
                "imap metadata",
                include_str!("../../migrations/postgres/0019_imap_metadata.sql"),
            ),
            (
                20,
                "node state",
                include_str!("../../migrations/postgres/0020_node_state.sql"),
            ),
            (
                21,
                "drop word index",
                include_str!("../../migrations/postgres/0021_drop_word_index.sql"),
            ),
            (
                22,
                "mailbox acl",
                include_str!("../../migrations/postgres/0022_mailbox_acl.sql"),
            ),
            (
                23,
                "urlauth keys",
                include_str!("../../migrations/postgres/0023_urlauth_keys.sql"),
            ),
            (
                24,
                "directory notify",
                include_str!("../../migrations/postgres/0024_directory_notify.sql"),
            ),
            (
                25,
                "trigram merge",
                include_str!("../../migrations/postgres/0025_trigram_merge.sql"),
            ),
            (
                26,
                "stem index",
                include_str!("../../migrations/postgres/0026_stem_index.sql"),
            ),
            (
                27,
                "message uid index",
                include_str!("../../migrations/postgres/0027_message_uid_index.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

impl SqlStore {
    /// Connects to the store `cfg` names (`sqlite://…` or `postgres://…`), migrates, sweeps
    /// orphans left by a crash, and starts the group-commit writer.
    pub async fn connect(cfg: &crate::StoreConfig, limits: crate::PgTimeouts) -> Result<SqlStore> {
        let url = cfg.url.as_str();
        let blob_dir = cfg.blob_dir.as_path();
        sqlx::any::install_default_drivers();
        let blobs: Arc<dyn BlobStore> = match &cfg.blob_s3 {
            Some(s3) => {
                let store = crate::blob_s3::S3BlobStore::open(s3)?;
                store.probe().await?;
                Arc::new(store)
            }
            None => Arc::new(FsBlobStore::open(blob_dir, SyncMode::Batch)?),
        };
        let (dialect, writer, reader, wal_path) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(limits.acquire)
                    .connect(url)
                    .await?;
                migrator(Dialect::Postgres)
                    .run(&pool)
                    .await
                    .map_err(|e| StoreError::Backend(format!("migration: {e}")))?;
                let pg = db::PgPool { pool, limits };
                (
                    Dialect::Postgres,
                    Pool::Any(pg.clone()),
                    Pool::Any(pg),
                    None,
                )
            } else if url.starts_with("sqlite:") {
                let file = migrate_sqlite(url).await?;
                let writer = db::LiteWriter::open(&file)?;
                let wal = writer.wal_path().to_path_buf();
                (
                    Dialect::Sqlite,
                    Pool::LiteWriter(writer),
                    Pool::LiteReaders(db::LiteReaders::open(&file, LITE_READERS)),
                    Some(wal),
                )
            } else {
                return Err(StoreError::Invalid(format!(
                    "unsupported store url (want sqlite:// or postgres://): {url}"
                )));
            };
        let shared = Arc::new(Shared {
            dialect,
            writer: writer.clone(),
            reader,
            blobs,
            events: EventHub::default(),
            blob_grace: cfg.blob_grace,
            recent_floors: Mutex::new(HashMap::new()),
            remote: writer.any().map(|pool| notify::start_outbox(pool.clone())),
            dir_cache: (dialect == Dialect::Postgres).then(dir_cache::DirCache::new),
            wal_path,
        });
        if dialect == Dialect::Postgres {
            notify::start_listener(url, &shared).await?;
        }
        let swept = shared.startup_sweep().await?;
        if swept > 0 {
            tracing::info!(swept, "store: removed orphaned blob files");
        }
        let jobs = writer::spawn(shared.clone());
        let flag_groups = (dialect == Dialect::Sqlite).then(|| flag_batch::spawn(shared.clone()));
        Ok(SqlStore {
            shared,
            jobs,
            flag_groups,
        })
    }
}

/// SQLite read connections: enough for every runtime thread plus the read transactions that
/// wait on something else (a blob read) while they hold their snapshot.
const LITE_READERS: usize = 16;

/// Creates (if need be) and migrates the SQLite database at `url` through sqlx's migrator, whose
/// bookkeeping table existing stores carry, and returns the database file's path. The store's own
/// connections open afterwards.
async fn migrate_sqlite(url: &str) -> Result<std::path::PathBuf> {
    let url = if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    migrator(Dialect::Sqlite)
        .run(&pool)
        .await
        .map_err(|e| StoreError::Backend(format!("migration: {e}")))?;
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    if file.is_empty() {
        return Err(StoreError::Invalid(
            "the SQLite store must be a file, not in memory".into(),
        ));
    }
    Ok(std::path::PathBuf::from(file))
}

// ---- small shared helpers ----

pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("{what} out of range: {v}")))
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} out of range: {v}")))
}

/// Keywords as stored: sorted case-insensitively, duplicates (case-insensitive) dropped, the
/// first spelling kept; only atoms survive (no spaces, no empty strings).
pub(crate) fn normalize_keywords(keywords: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keywords {
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            continue;
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(k)) {
            out.push(k.clone());
        }
    }
    out.sort_by_key(|k| k.to_ascii_lowercase());
    out
}

pub(crate) fn encode_keywords(keywords: &[String]) -> String {
    keywords.join(" ")
}

pub(crate) fn decode_keywords(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub(crate) fn entry_from_row(row: &Row) -> Result<MessageEntry> {
    Ok(MessageEntry {
        uid: to_u32(row.try_get("uid")?, "uid")?,
        message_id: row.try_get("message_id")?,
        flags: Flags(to_u32(row.try_get("flags")?, "flags")?),
        keywords: decode_keywords(&row.try_get::<String, _>("keywords")?),
        modseq: to_u64(row.try_get("modseq")?, "modseq")?,
        size: to_u64(row.try_get("size")?, "size")?,
        internal_date: row.try_get("internal_date")?,
        saved_at: row.try_get("saved_at")?,
    })
}

/// Columns `entry_from_row` reads, all from `mailbox_messages mm` (no join with `messages`).
pub(crate) const ENTRY_COLUMNS: &str = "mm.uid, mm.message_id, mm.flags, mm.keywords, mm.modseq, mm.size, mm.internal_date, \
     COALESCE(mm.saved_at, mm.internal_date) AS saved_at";

/// A locked account row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountState {
    pub quota: i64,
    pub used: i64,
    pub disabled: bool,
}

impl AccountState {
    /// Whether `more` bytes more would exceed the quota (0 = unlimited).
    pub fn over_quota(&self, more: i64) -> bool {
        self.quota > 0 && self.used.saturating_add(more) > self.quota
    }
}

/// An account row's quota columns (`lock_account`, `lock_mailbox_account`).
pub(super) fn account_state(r: &Row) -> Result<AccountState> {
    Ok(AccountState {
        quota: r.try_get("quota_bytes")?,
        used: r.try_get("used_bytes")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

impl Shared {
    /// A write transaction whose commit is durable (fsynced) before `commit` returns: mail,
    /// queue entries, accounts, mailboxes — everything but the changes `begin_write_relaxed` takes.
    pub async fn begin_write(&self) -> Result<Tx> {
        self.writer.begin_write(Durability::Durable).await
    }

    /// The group commit's transaction (new mail). It commits without syncing, which frees the one
    /// writer connection for the next transaction at once, and the writer then calls `sync_wal`
    /// before answering anyone. PostgreSQL: `begin_write`.
    pub async fn begin_write_group(&self) -> Result<Tx> {
        self.writer.begin_write(Durability::CallerSyncs).await
    }

    /// Makes every transaction committed so far durable (SQLite: fdatasync of the `-wal` file;
    /// PostgreSQL commits are durable already). Checkpoints need nothing from here: SQLite syncs
    /// the WAL before copying it into the database and the database after.
    pub async fn sync_wal(&self) -> Result<()> {
        match &self.wal_path {
            Some(path) => db::sync_wal(path.clone()).await,
            None => Ok(()),
        }
    }

    /// A write transaction for flag changes (STORE, \Seen by FETCH, \Recent claims): committed
    /// and visible to every session at once, and never torn, but not fsynced on its own — it
    /// becomes durable with the next durable commit (every later commit syncs the whole WAL
    /// before it, SQLite and PostgreSQL alike) or checkpoint. A power cut can forget the last
    /// flag changes; a crash of the process cannot (the WAL is written before commit returns).
    /// This is the trade Dovecot makes for its index by default, and it spares each STORE an
    /// fsync (measured in docs/benchmarks.md).
    pub async fn begin_write_relaxed(&self) -> Result<Tx> {
        self.writer.begin_write(Durability::Relaxed).await
    }

    /// A read-only transaction that sees one consistent snapshot.
    pub async fn begin_read(&self) -> Result<Tx> {
        self.reader.begin_read().await
    }

    /// Locks and reads the account row (see the module's locking discipline). None if missing.
    pub async fn lock_account(
        &self,
        tx: &mut Tx,
        account: AccountId,
    ) -> Result<Option<AccountState>> {
        let sql = self.dialect.pick(
            "SELECT quota_bytes, used_bytes, disabled FROM accounts WHERE id = $1",
            "SELECT quota_bytes, used_bytes, disabled FROM accounts WHERE id = $1 FOR UPDATE",
        );
        let row = db::query(sql)
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?;
        row.as_ref().map(account_state).transpose()
    }

    /// The account owning a mailbox, that account locked, in one statement (one round trip to
    /// PostgreSQL; it locks only the account row, as `lock_account` does).
    pub async fn lock_mailbox_account(
        &self,
        tx: &mut Tx,
        mailbox: MailboxId,
    ) -> Result<(AccountId, AccountState)> {
        let sql = self.dialect.pick(
            "SELECT a.id, a.quota_bytes, a.used_bytes, a.disabled FROM mailboxes m \
             JOIN accounts a ON a.id = m.account_id WHERE m.id = $1",
            "SELECT a.id, a.quota_bytes, a.used_bytes, a.disabled FROM mailboxes m \
             JOIN accounts a ON a.id = m.account_id WHERE m.id = $1 FOR UPDATE OF a",
        );
        let row = db::query(sql)
            .bind(mailbox)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        Ok((row.try_get("id")?, account_state(&row)?))
    }

    /// The account owning a mailbox, locked on PostgreSQL (the lock-ordering discipline above);
    /// for writers that do not need the account's quota. On SQLite the one writer connection
    /// already serializes every write, so the account row is not read: one statement, that is one
    /// round trip to sqlx's SQLite thread, fewer per STORE and per `\Recent` claim.
    pub async fn mailbox_account(&self, tx: &mut Tx, mailbox: MailboxId) -> Result<AccountId> {
        match self.dialect {
            Dialect::Postgres => Ok(self.lock_mailbox_account(tx, mailbox).await?.0),
            Dialect::Sqlite => db::query_scalar("SELECT account_id FROM mailboxes WHERE id = $1")
                .bind(mailbox)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}"))),
        }
    }

    pub async fn add_used(&self, tx: &mut Tx, account: AccountId, delta: i64) -> Result<()> {
        if delta != 0 {
            db::query("UPDATE accounts SET used_bytes = used_bytes + $1 WHERE id = $2")
                .bind(delta)
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Advances a mailbox's counters by `uids` UIDs and `modseqs` modseqs; returns the values
    /// after the change: (uid_next, highest_modseq, uid_validity).
    pub async fn bump_mailbox(
        &self,
        tx: &mut Tx,
        mailbox: MailboxId,
        uids: i64,
        modseqs: i64,
    ) -> Result<(i64, i64, u32)> {
        let row = db::query(
            "UPDATE mailboxes SET uid_next = uid_next + $1, highest_modseq = highest_modseq + $2 \
             WHERE id = $3 RETURNING uid_next, highest_modseq, uid_validity",
        )
        .bind(uids)
        .bind(modseqs)
        .bind(mailbox)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let next: i64 = row.try_get("uid_next")?;
        if next > i64::from(u32::MAX) {
            // UIDs are 32-bit: the mailbox is full for this UIDVALIDITY.
            return Err(StoreError::Invalid(format!(
                "mailbox {mailbox} has run out of UIDs"
            )));
        }
        Ok((
            next,
            row.try_get("highest_modseq")?,
            to_u32(row.try_get("uid_validity")?, "uid_validity")?,
        ))
    }

    /// Rows of `mailbox` whose UID is in `uids`, ascending.
    pub async fn entries_for_uids(
        &self,
        tx: &mut Tx,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageEntry>> {
        let (Some(lo), Some(hi)) = (uids.iter().min(), uids.iter().max()) else {
            return Ok(Vec::new());
        };
        let wanted: std::collections::HashSet<Uid> = uids.iter().copied().collect();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM mailbox_messages mm \
             WHERE mm.mailbox_id = $1 AND mm.uid >= $2 AND mm.uid <= $3 ORDER BY mm.uid"
        );
        let rows = db::query(sql)
            .bind(mailbox)
            .bind(i64::from(*lo))
            .bind(i64::from(*hi))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let e = entry_from_row(r)?;
            if wanted.contains(&e.uid) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Drops `messages` rows no mailbox refers to any more (with their search text) and releases
    /// their blob references. Returns the hashes whose last reference went: their files may go
    /// once the transaction has committed (`collect_garbage`).
    pub async fn release_messages(
        &self,
        tx: &mut Tx,
        message_ids: &[MessageId],
    ) -> Result<Vec<String>> {
        let mut ids = message_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut released: BTreeMap<String, i64> = BTreeMap::new();
        for id in ids {
            let still: i64 =
                db::query_scalar("SELECT COUNT(*) FROM mailbox_messages WHERE message_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if still > 0 {
                continue;
            }
            let Some(row) = db::query("SELECT account_id, blob_hash FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                continue;
            };
            let hash: String = row.try_get("blob_hash")?;
            if !self.blob_grace.is_zero() {
                // Its body stays for the grace period: a session that has not yet heard of the
                // expunge can still read it by this id (ids are never given twice).
                db::query(
                    "INSERT INTO released_messages (message_id, account_id, blob_hash, released_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(id)
                .bind(row.try_get::<i64, _>("account_id")?)
                .bind(&hash)
                .bind(now_secs())
                .execute(&mut *tx)
                .await?;
            }
            db::query("DELETE FROM message_text WHERE message_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            db::query("DELETE FROM messages WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            *released.entry(hash).or_insert(0) += 1;
        }
        self.unref_blobs(tx, released).await
    }

    /// Publishes to this node's subscribers and, on PostgreSQL, to every other node's.
    pub fn announce(&self, account: AccountId, event: MailboxEvent) {
        if let Some(remote) = &self.remote {
            remote.send(account, &event);
        }
        self.events.publish(account, event);
    }

    pub fn publish_changed(&self, account: AccountId, mailbox_id: MailboxId, highest_modseq: i64) {
        if let Ok(m) = u64::try_from(highest_modseq) {
            self.announce(
                account,
                MailboxEvent::Changed {
                    mailbox_id,
                    highest_modseq: m,
                },
            );
        }
    }
}
