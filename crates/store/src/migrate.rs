//! `wharf migrate`: moving an embedded store (SQLite file plus blob folder) to PostgreSQL (plus,
//! optionally, another blob folder) without changing anything a client sees: every row is copied
//! with its ids, so UIDs, UIDVALIDITY, MODSEQs, flags and message ids stay as they were.
//!
//! The copy is resumable: rows go in with `ON CONFLICT DO NOTHING`, table by table in foreign-key
//! order, so a second run after an interruption adds what is missing. It is verified: per table
//! the row count, and for the tables that carry what IMAP shows (mailboxes, mailbox_messages,
//! messages, blobs) a SHA-256 over every row in primary-key order, computed on both sides.
//! The source is read inside one read transaction (a consistent snapshot); the server should be
//! stopped, or mail accepted after the snapshot stays behind.
//!
//! The SQL here is built from table and column names read from the two schemas (never from
//! user input), hence `AssertSqlSafe`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};

use crate::{Result, StoreConfig, StoreError};

/// Tables in the order their foreign keys allow. Others found in the source (added by later
/// migrations) are copied after these.
const ORDER: &[&str] = &[
    "domains",
    "accounts",
    "aliases",
    "mailboxes",
    "blobs",
    "messages",
    "mailbox_messages",
    "expunged",
    "message_text",
];

/// Copied as they are nowhere: SQLite's own tables, the FTS index (PostgreSQL indexes by a
/// column), the migration ledger, and per-process state (the registry, POP3 locks, and each
/// node's recent authentication failure counts).
const SKIPPED: &[&str] = &[
    "message_fts",
    "_sqlx_migrations",
    "nodes",
    "maildrop_locks",
    "auth_failures",
];

/// Tables whose rows are compared by hash after the copy.
const VERIFIED: &[&str] = &[
    "mailboxes",
    "mailbox_messages",
    "messages",
    "blobs",
    "accounts",
];

const BATCH: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Some: rows hashed on both sides; `true` when the hashes agree.
    pub hashes_match: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    pub tables: Vec<TableReport>,
}

impl MigrateReport {
    /// Every table has as many rows on the target as on the source, and every hash matches.
    pub fn verified(&self) -> bool {
        self.tables
            .iter()
            .all(|t| t.target_rows == t.source_rows && t.hashes_match != Some(false))
    }
}

/// A value read from SQLite, before it is bound with the target column's type.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    fn of(v: ValueRef<'_>) -> Cell {
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        }
    }

    /// The canonical text hashed for verification, the same for either side.
    fn canonical(&self) -> String {
        match self {
            Cell::Null => "\u{0}N".into(),
            Cell::Int(i) => i.to_string(),
            Cell::Real(f) => f.to_string(),
            Cell::Text(t) => t.clone(),
            Cell::Bytes(b) => hex::encode(b),
        }
    }
}

struct Column {
    name: String,
    /// PostgreSQL `data_type`.
    pg_type: String,
}

struct Source {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl Source {
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let c = conn
                .lock()
                .map_err(|_| StoreError::Backend("source connection poisoned".into()))?;
            f(&c).map_err(|e| StoreError::Backend(format!("source: {e}")))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("source reader: {e}")))?
    }
}

fn pg_err(e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("target: {e}"))
}

/// Copies the embedded store at `source_db` (the SQLite file) into the PostgreSQL database at
/// `target_url`, creating its schema when needed; `progress` hears one line per step.
pub async fn embedded_to_postgres(
    source_db: &Path,
    target_url: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<MigrateReport> {
    // Opening the target as a store applies the migrations (both sides are at the same schema
    // version, as this binary made both).
    {
        let scratch = tempfile_dir()?;
        let cfg = StoreConfig {
            url: target_url.to_string(),
            blob_dir: scratch.clone(),
            blob_s3: None,
            blob_grace: crate::DEFAULT_BLOB_GRACE,
        };
        let store = crate::open(&cfg).await?;
        drop(store);
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let conn = rusqlite::Connection::open_with_flags(
        source_db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", source_db.display())))?;
    // One snapshot for the whole copy.
    conn.execute_batch("BEGIN")
        .map_err(|e| StoreError::Backend(format!("source: {e}")))?;
    let source = Source {
        conn: Arc::new(Mutex::new(conn)),
    };
    let mut target = PgConnection::connect(target_url).await.map_err(pg_err)?;

    let mut tables: Vec<String> = source
        .with(|c| {
            let mut st = c.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND sql NOT LIKE 'CREATE VIRTUAL%'",
            )?;
            let names = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(names)
        })
        .await?;
    tables.retain(|t| !SKIPPED.contains(&t.as_str()) && !t.starts_with("message_fts"));
    tables.sort_by_key(|t| ORDER.iter().position(|o| o == t).unwrap_or(ORDER.len()));

    let mut report = MigrateReport { tables: Vec::new() };
    for table in &tables {
        let columns = target_columns(&mut target, table).await?;
        if columns.is_empty() {
            progress(&format!("{table}: not in the target schema, skipped"));
            continue;
        }
        let source_cols: Vec<String> = {
            let t = table.clone();
            source
                .with(move |c| {
                    let mut st = c.prepare(&format!("PRAGMA table_info(\"{t}\")"))?;
                    let names = st
                        .query_map([], |r| r.get::<_, String>(1))?
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    Ok(names)
                })
                .await?
        };
        let copied = copy_table(&source, &mut target, table, &columns, &source_cols).await?;
        progress(&format!("{table}: {copied} rows read"));
    }
    reset_identities(&mut target, &tables).await?;
    let _ = source.with(|c| c.execute_batch("COMMIT")).await;

    for table in &tables {
        let columns = target_columns(&mut target, table).await?;
        if columns.is_empty() {
            continue;
        }
        let t = table.clone();
        let source_rows: i64 = source
            .with(move |c| c.query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0)))
            .await?;
        let target_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM \"{table}\""
        )))
        .fetch_one(&mut target)
        .await
        .map_err(pg_err)?;
        let hashes_match = if VERIFIED.contains(&table.as_str()) {
            Some(table_hashes_agree(&source, &mut target, table, &columns).await?)
        } else {
            None
        };
        report.tables.push(TableReport {
            table: table.clone(),
            source_rows: u64::try_from(source_rows).unwrap_or(0),
            target_rows: u64::try_from(target_rows).unwrap_or(0),
            hashes_match,
        });
    }
    Ok(report)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("wharf-migrate-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The target table's columns that a copy fills (identity columns included: ids are kept).
async fn target_columns(target: &mut PgConnection, table: &str) -> Result<Vec<Column>> {
    let rows = sqlx::query(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *target)
    .await
    .map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            Ok(Column {
                name: r.try_get::<String, _>(0).map_err(pg_err)?,
                pg_type: r.try_get::<String, _>(1).map_err(pg_err)?,
            })
        })
        .collect()
}

async fn copy_table(
    source: &Source,
    target: &mut PgConnection,
    table: &str,
    columns: &[Column],
    source_cols: &[String],
) -> Result<u64> {
    // Columns both sides have.
    let shared: Vec<&Column> = columns
        .iter()
        .filter(|c| source_cols.contains(&c.name))
        .collect();
    let names: Vec<String> = shared.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let values: Vec<String> = shared
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.pg_type == "boolean" {
                format!("(${} <> 0)", i + 1)
            } else {
                format!("${}", i + 1)
            }
        })
        .collect();
    let insert = format!(
        "INSERT INTO \"{table}\" ({}) VALUES ({}) ON CONFLICT DO NOTHING",
        names.join(", "),
        values.join(", ")
    );
    let select_cols: Vec<String> = shared.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let mut last_rowid = i64::MIN;
    let mut total = 0u64;
    loop {
        let sql = format!(
            "SELECT rowid, {} FROM \"{table}\" WHERE rowid > ?1 ORDER BY rowid LIMIT {BATCH}",
            select_cols.join(", ")
        );
        let width = select_cols.len();
        let after = last_rowid;
        let batch: Vec<(i64, Vec<Cell>)> = source
            .with(move |c| {
                let mut st = c.prepare(&sql)?;
                let mut rows = st.query([after])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let rowid: i64 = r.get(0)?;
                    let mut cells = Vec::with_capacity(width);
                    for i in 0..width {
                        cells.push(Cell::of(r.get_ref(i + 1)?));
                    }
                    out.push((rowid, cells));
                }
                Ok(out)
            })
            .await?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        last_rowid = *last;
        let mut tx = target.begin().await.map_err(pg_err)?;
        for (_, cells) in &batch {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (cell, col) in cells.iter().zip(&shared) {
                q = bind(q, cell, &col.pg_type)?;
            }
            q.execute(&mut *tx).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        total += batch.len() as u64;
    }
    Ok(total)
}

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    cell: &Cell,
    pg_type: &str,
) -> Result<sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>> {
    let wrong = || {
        StoreError::Backend(format!(
            "source value {cell:?} does not fit a {pg_type} column"
        ))
    };
    Ok(match pg_type {
        "bigint" | "integer" | "smallint" | "boolean" => match cell {
            Cell::Null => q.bind(None::<i64>),
            Cell::Int(i) => q.bind(*i),
            Cell::Text(t) => q.bind(t.trim().parse::<i64>().map_err(|_| wrong())?),
            _ => return Err(wrong()),
        },
        "double precision" | "real" | "numeric" => match cell {
            Cell::Null => q.bind(None::<f64>),
            Cell::Int(i) => q.bind(*i as f64),
            Cell::Real(f) => q.bind(*f),
            _ => return Err(wrong()),
        },
        "bytea" => match cell {
            Cell::Null => q.bind(None::<Vec<u8>>),
            Cell::Bytes(b) => q.bind(b.clone()),
            Cell::Text(t) => q.bind(t.as_bytes().to_vec()),
            _ => return Err(wrong()),
        },
        _ => match cell {
            Cell::Null => q.bind(None::<String>),
            Cell::Text(t) => q.bind(t.clone()),
            Cell::Int(i) => q.bind(i.to_string()),
            Cell::Real(f) => q.bind(f.to_string()),
            Cell::Bytes(b) => q.bind(String::from_utf8_lossy(b).into_owned()),
        },
    })
}

/// Identity sequences continue after the copied ids; `counters` keep the larger value.
async fn reset_identities(target: &mut PgConnection, tables: &[String]) -> Result<()> {
    for table in tables {
        let identity: Option<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND is_identity = 'YES'",
        )
        .bind(table)
        .fetch_optional(&mut *target)
        .await
        .map_err(pg_err)?;
        if let Some(col) = identity {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{col}'), \
                 GREATEST((SELECT COALESCE(MAX(\"{col}\"), 0) FROM \"{table}\"), 1))"
            )))
            .execute(&mut *target)
            .await
            .map_err(pg_err)?;
        }
    }
    Ok(())
}

/// The primary-key columns of a table, from the source's schema.
async fn primary_key(source: &Source, table: &str) -> Result<Vec<String>> {
    let t = table.to_string();
    source
        .with(move |c| {
            let mut st = c.prepare(&format!("PRAGMA table_info(\"{t}\")"))?;
            let mut cols: Vec<(i64, String)> = st
                .query_map([], |r| Ok((r.get::<_, i64>(5)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            cols.retain(|(pk, _)| *pk > 0);
            cols.sort();
            Ok(cols.into_iter().map(|(_, n)| n).collect())
        })
        .await
}

/// SHA-256 over every row (the columns both sides have, in primary-key order) on each side.
async fn table_hashes_agree(
    source: &Source,
    target: &mut PgConnection,
    table: &str,
    columns: &[Column],
) -> Result<bool> {
    let t = table.to_string();
    let source_cols: Vec<String> = source
        .with(move |c| {
            let mut st = c.prepare(&format!("PRAGMA table_info(\"{t}\")"))?;
            let names = st
                .query_map([], |r| r.get::<_, String>(1))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(names)
        })
        .await?;
    let shared: Vec<&Column> = columns
        .iter()
        .filter(|c| source_cols.contains(&c.name) && c.pg_type != "tsvector")
        .collect();
    let pk = primary_key(source, table).await?;
    if pk.is_empty() || shared.is_empty() {
        return Ok(true);
    }
    let types: HashMap<&str, &str> = shared
        .iter()
        .map(|c| (c.name.as_str(), c.pg_type.as_str()))
        .collect();
    let cols: Vec<String> = shared.iter().map(|c| format!("\"{}\"", c.name)).collect();
    // Text keys in byte order on both sides.
    let order_pg: Vec<String> = pk
        .iter()
        .map(|k| match types.get(k.as_str()) {
            Some(&"text") => format!("\"{k}\" COLLATE \"C\""),
            _ => format!("\"{k}\""),
        })
        .collect();
    let order_lite: Vec<String> = pk.iter().map(|k| format!("\"{k}\"")).collect();

    let sql = format!(
        "SELECT {} FROM \"{table}\" ORDER BY {}",
        cols.join(", "),
        order_lite.join(", ")
    );
    let width = cols.len();
    let source_hash: Vec<u8> = source
        .with(move |c| {
            let mut st = c.prepare(&sql)?;
            let mut rows = st.query([])?;
            let mut h = Sha256::new();
            while let Some(r) = rows.next()? {
                for i in 0..width {
                    h.update(Cell::of(r.get_ref(i)?).canonical().as_bytes());
                    h.update([0x1f]);
                }
                h.update([0x1e]);
            }
            Ok(h.finalize().to_vec())
        })
        .await?;

    // PostgreSQL renders every column as text; bytea as hex without the \x prefix. The output
    // columns are renamed, so ORDER BY sorts by the table's columns, not by their text.
    let select: Vec<String> = shared
        .iter()
        .enumerate()
        .map(|(i, c)| match c.pg_type.as_str() {
            "bytea" => format!("encode(\"{}\", 'hex') AS c{i}", c.name),
            "boolean" => format!("(\"{}\")::int::text AS c{i}", c.name),
            _ => format!("\"{}\"::text AS c{i}", c.name),
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM \"{table}\" ORDER BY {}",
        select.join(", "),
        order_pg.join(", ")
    );
    let mut h = Sha256::new();
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *target);
    use futures::TryStreamExt as _;
    while let Some(r) = rows.try_next().await.map_err(pg_err)? {
        for i in 0..width {
            let v: Option<String> = r.try_get(i).map_err(pg_err)?;
            match v {
                Some(s) => h.update(s.as_bytes()),
                None => h.update("\u{0}N".as_bytes()),
            }
            h.update([0x1f]);
        }
        h.update([0x1e]);
    }
    Ok(h.finalize().to_vec() == source_hash)
}

/// Copies the blob files under `from` into `target` (an S3 bucket, or another folder), checking
/// each body against its name (the SHA-256 it is stored under) before it is sent, and again as
/// read back from the target. Bodies already in the target with the right size are skipped, so
/// an interrupted copy resumes. Returns (copied, already there); `progress` hears a line now
/// and then.
pub async fn copy_blobs_to(
    from: &Path,
    target: Arc<dyn crate::blob::BlobStore>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(u64, u64)> {
    /// Bodies to send (hash, bytes), how many were in the target already, how many names
    /// were looked at.
    type Batch = (Vec<(String, Vec<u8>)>, u64, usize);
    /// One batch: at most this many bodies, or this many bytes (the last may pass it).
    const BATCH: usize = 64;
    const BATCH_BYTES: u64 = 64 << 20;
    let source = Arc::new(crate::blob::FsBlobStore::open(
        from,
        crate::blob::SyncMode::Batch,
    )?);
    let hashes = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || source.list(std::time::Duration::ZERO))
            .await
            .map_err(|e| StoreError::Backend(format!("blob listing: {e}")))??
    };
    let total = hashes.len();
    let (mut copied, mut present, mut reported) = (0u64, 0u64, 0u64);
    let mut next = 0;
    while next < total {
        // Which of the next ones the target lacks, and their bytes, checked.
        let (batch, skipped, upto) = {
            let source = source.clone();
            let target = target.clone();
            let hashes: Vec<String> = hashes[next..].iter().take(BATCH * 4).cloned().collect();
            let from = from.to_path_buf();
            tokio::task::spawn_blocking(move || -> Result<Batch> {
                let mut batch = Vec::new();
                let (mut skipped, mut bytes, mut used) = (0u64, 0u64, 0usize);
                for hash in &hashes {
                    if batch.len() >= BATCH || bytes >= BATCH_BYTES {
                        break;
                    }
                    used += 1;
                    let path = source.path_of(hash);
                    let len = std::fs::metadata(&path)?.len();
                    if target.size_of(hash)? == Some(len) {
                        skipped += 1;
                        continue;
                    }
                    let body = std::fs::read(&path)?;
                    if crate::blob::blob_hash(&body) != *hash {
                        return Err(StoreError::Backend(format!(
                            "blob {hash} in {} does not match its hash: not copied",
                            from.display()
                        )));
                    }
                    bytes += len;
                    batch.push((hash.clone(), body));
                }
                let refs: Vec<(&str, &[u8])> = batch
                    .iter()
                    .map(|(h, b)| (h.as_str(), b.as_slice()))
                    .collect();
                if !refs.is_empty() {
                    target.put_durable(&refs)?;
                }
                Ok((batch, skipped, used))
            })
            .await
            .map_err(|e| StoreError::Backend(format!("blob copy: {e}")))??
        };
        next += upto;
        present += skipped;
        // Read back what was sent.
        let names: Vec<String> = batch.iter().map(|(h, _)| h.clone()).collect();
        for (hash, read) in names.iter().zip(target.read_many(&names).await?) {
            let read = read?;
            if crate::blob::blob_hash(&read) != *hash {
                return Err(StoreError::Backend(format!(
                    "blob {hash} read back from the target does not match its hash"
                )));
            }
        }
        copied += batch.len() as u64;
        if copied + present >= reported + 1000 {
            reported = copied + present;
            progress(&format!(
                "blobs: {copied} copied, {present} already there, of {total}"
            ));
        }
    }
    Ok((copied, present))
}

/// Copies the blob files under `from` to `to`, checking each file's content against its name
/// (the SHA-256 it is stored under); files already there with the right content are skipped,
/// so an interrupted copy resumes. Returns (copied, already there).
pub fn copy_blobs(from: &Path, to: &Path) -> Result<(u64, u64)> {
    let source = crate::blob::FsBlobStore::open(from, crate::blob::SyncMode::Batch)?;
    let target = crate::blob::FsBlobStore::open(to, crate::blob::SyncMode::Batch)?;
    let hashes = source.list(std::time::Duration::ZERO)?;
    let (mut copied, mut present) = (0u64, 0u64);
    for chunk in hashes.chunks(256) {
        let mut items: Vec<(String, Vec<u8>)> = Vec::new();
        for hash in chunk {
            if target.exists(hash) {
                present += 1;
                continue;
            }
            let bytes = std::fs::read(source.path_of(hash))?;
            if crate::blob::blob_hash(&bytes) != *hash {
                return Err(StoreError::Backend(format!(
                    "blob {hash} in {} does not match its hash: not copied",
                    from.display()
                )));
            }
            items.push((hash.clone(), bytes));
        }
        let refs: Vec<(&str, &[u8])> = items
            .iter()
            .map(|(h, b)| (h.as_str(), b.as_slice()))
            .collect();
        if !refs.is_empty() {
            target.put_durable(&refs)?;
        }
        copied += items.len() as u64;
    }
    Ok((copied, present))
}
