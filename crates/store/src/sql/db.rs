//! The SQL store's one door to its database: statements, parameters, rows, connections and
//! transactions, for both backends behind one sqlx-like surface (`query(..).bind(..).fetch_one(tx)`).
//!
//! SQLite runs through rusqlite **on the calling task's thread**. An SQLite statement on a warm
//! page cache takes microseconds; a driver thread (sqlx's SQLite worker) costs two context switches
//! per statement and more per result row, which `perf` showed to be half of the server's CPU time
//! under IMAP and POP3 load (docs/benchmarks.md). Nothing here blocks for long: writers never wait
//! on SQLite's busy handler (a locked database is retried with an async sleep), commits do not
//! fsync inline (the WAL is synced afterwards on a blocking thread, see `Tx::commit`), and
//! checkpoints run on their own thread (`spawn_checkpointer`).
//!
//! PostgreSQL runs through sqlx's `Any` driver, whose pool and network round trips are the right
//! shape for it.
//!
//! Why one long file: this is the only place that knows both drivers, and each type here
//! (`Pool`, `Tx`, `Query`, `Row`) is a pair of arms, one per backend, that must keep the same
//! semantics (durability, timeouts, error mapping). Kept side by side, a change to one arm shows
//! its twin in the same diff; split per backend, the arms could drift apart unnoticed.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value as LiteValue, ValueRef};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row as _};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::{PgTimeouts, Result, StoreError};

/// How long a writer keeps retrying a database another process holds locked.
const LOCKED_PATIENCE: Duration = Duration::from_secs(10);
/// Prepared statements kept per SQLite connection (the store has about a hundred distinct ones).
const STATEMENT_CACHE: usize = 256;
/// Write commits after which the checkpointer is woken (it also runs once a second).
const COMMITS_PER_CHECKPOINT: u64 = 256;

// ---- parameters ----

/// A bound parameter. Nulls carry their type: PostgreSQL wants to know it.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    NullInt,
    NullText,
    NullBlob,
}

pub(crate) trait IntoParam {
    fn into_param(self) -> Param;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl IntoParam for $t {
            fn into_param(self) -> Param {
                Param::Int(i64::from(self))
            }
        }
    )*};
}
int_param!(i64, i32, u32);

impl IntoParam for bool {
    fn into_param(self) -> Param {
        Param::Int(i64::from(self))
    }
}
impl IntoParam for String {
    fn into_param(self) -> Param {
        Param::Text(self)
    }
}
impl IntoParam for &String {
    fn into_param(self) -> Param {
        Param::Text(self.clone())
    }
}
impl IntoParam for &str {
    fn into_param(self) -> Param {
        Param::Text(self.to_string())
    }
}
impl IntoParam for Vec<u8> {
    fn into_param(self) -> Param {
        Param::Blob(self)
    }
}
impl IntoParam for &[u8] {
    fn into_param(self) -> Param {
        Param::Blob(self.to_vec())
    }
}

/// What a null of this type binds as.
pub(crate) trait NullKind {
    const NULL: Param;
}
impl NullKind for i64 {
    const NULL: Param = Param::NullInt;
}
impl NullKind for i32 {
    const NULL: Param = Param::NullInt;
}
impl NullKind for u32 {
    const NULL: Param = Param::NullInt;
}
impl NullKind for bool {
    const NULL: Param = Param::NullInt;
}
impl NullKind for String {
    const NULL: Param = Param::NullText;
}
impl NullKind for &String {
    const NULL: Param = Param::NullText;
}
impl NullKind for &str {
    const NULL: Param = Param::NullText;
}
impl NullKind for Vec<u8> {
    const NULL: Param = Param::NullBlob;
}
impl NullKind for &[u8] {
    const NULL: Param = Param::NullBlob;
}

impl<T: IntoParam + NullKind> IntoParam for Option<T> {
    fn into_param(self) -> Param {
        match self {
            Some(v) => v.into_param(),
            None => T::NULL,
        }
    }
}
impl<T: IntoParam + NullKind + Clone> IntoParam for &Option<T> {
    fn into_param(self) -> Param {
        self.clone().into_param()
    }
}

impl IntoParam for &i64 {
    fn into_param(self) -> Param {
        Param::Int(*self)
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Int(v) => ValueRef::Integer(*v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
            Param::Blob(v) => ValueRef::Blob(v),
            Param::NullInt | Param::NullText | Param::NullBlob => ValueRef::Null,
        }))
    }
}

// ---- rows ----

/// A result row of either backend.
pub(crate) enum Row {
    Any(AnyRow),
    Lite(LiteRow),
}

pub(crate) struct LiteRow {
    names: Arc<[String]>,
    values: Vec<LiteValue>,
}

/// A column type both backends decode.
pub(crate) trait Decode: Sized + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String>;
}

fn kind(v: &LiteValue) -> &'static str {
    match v {
        LiteValue::Null => "NULL",
        LiteValue::Integer(_) => "integer",
        LiteValue::Real(_) => "real",
        LiteValue::Text(_) => "text",
        LiteValue::Blob(_) => "blob",
    }
}

impl Decode for i64 {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        match v {
            LiteValue::Integer(i) => Ok(*i),
            other => Err(format!("expected integer, found {}", kind(other))),
        }
    }
}
impl Decode for i32 {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        let i = i64::from_lite(v)?;
        i32::try_from(i).map_err(|_| format!("integer {i} out of range"))
    }
}
impl Decode for bool {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        Ok(i64::from_lite(v)? != 0)
    }
}
impl Decode for f64 {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        match v {
            LiteValue::Real(r) => Ok(*r),
            LiteValue::Integer(i) => Ok(*i as f64),
            other => Err(format!("expected real, found {}", kind(other))),
        }
    }
}
impl Decode for String {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        match v {
            LiteValue::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {}", kind(other))),
        }
    }
}
impl Decode for Vec<u8> {
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        match v {
            LiteValue::Blob(b) => Ok(b.clone()),
            LiteValue::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected blob, found {}", kind(other))),
        }
    }
}
impl<T: Decode> Decode for Option<T>
where
    Option<T>: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    fn from_lite(v: &LiteValue) -> std::result::Result<Self, String> {
        match v {
            LiteValue::Null => Ok(None),
            other => T::from_lite(other).map(Some),
        }
    }
}

/// A column named or numbered.
pub(crate) trait ColumnIndex: sqlx::ColumnIndex<AnyRow> + std::fmt::Debug + Copy {
    fn position(&self, names: &[String]) -> Option<usize>;
}
impl ColumnIndex for &str {
    fn position(&self, names: &[String]) -> Option<usize> {
        names.iter().position(|n| n == self)
    }
}
impl ColumnIndex for usize {
    fn position(&self, names: &[String]) -> Option<usize> {
        (*self < names.len()).then_some(*self)
    }
}

impl Row {
    pub fn try_get<T: Decode, I: ColumnIndex>(&self, index: I) -> Result<T> {
        match self {
            Row::Any(row) => Ok(row.try_get::<T, I>(index)?),
            Row::Lite(row) => {
                let i = index
                    .position(&row.names)
                    .ok_or_else(|| StoreError::Backend(format!("no column {index:?}")))?;
                T::from_lite(&row.values[i])
                    .map_err(|e| StoreError::Backend(format!("column {index:?}: {e}")))
            }
        }
    }
}

// ---- statements ----

/// A statement with its parameters, not yet run.
pub(crate) struct Query {
    sql: Cow<'static, str>,
    params: Vec<Param>,
    heavy: bool,
}

pub(crate) fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query {
        sql: sql.into(),
        params: Vec::new(),
        heavy: false,
    }
}

/// Runs `f`, which may take long (a scan of a whole mailbox's text, the rows of a deleted
/// account), so that the runtime thread's other tasks move to another thread meanwhile
/// (`block_in_place`; on a current-thread runtime it simply runs).
pub(crate) fn run_heavy<T>(heavy: bool, f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if heavy && h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A statement whose first column is the answer.
pub(crate) struct QueryScalar<T> {
    inner: Query,
    _t: PhantomData<fn() -> T>,
}

pub(crate) fn query_scalar<T: Decode>(sql: impl Into<Cow<'static, str>>) -> QueryScalar<T> {
    QueryScalar {
        inner: query(sql),
        _t: PhantomData,
    }
}

/// What `execute` reports.
#[derive(Debug)]
pub(crate) struct Done {
    rows_affected: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

/// Where a statement runs: inside a transaction, or on a pool (autocommit).
pub(crate) enum Target<'a> {
    Tx(&'a mut Tx),
    Pool(&'a Pool),
}

impl<'a> From<&'a mut Tx> for Target<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Target::Tx(tx)
    }
}
impl<'a> From<&'a Pool> for Target<'a> {
    fn from(pool: &'a Pool) -> Self {
        Target::Pool(pool)
    }
}

/// What a run collects.
enum Collect {
    Nothing,
    FirstRow,
    AllRows,
}

struct Outcome {
    rows: Vec<Row>,
    changes: u64,
}

impl Query {
    pub fn bind(mut self, value: impl IntoParam) -> Self {
        self.params.push(value.into_param());
        self
    }

    /// Marks a statement whose run time grows with a mailbox or an account (see `run_heavy`).
    pub fn heavy(mut self) -> Self {
        self.heavy = true;
        self
    }

    pub async fn execute<'a>(self, target: impl Into<Target<'a>>) -> Result<Done> {
        let out = self.run(target.into(), Collect::Nothing).await?;
        Ok(Done {
            rows_affected: out.changes,
        })
    }

    pub async fn fetch_all<'a>(self, target: impl Into<Target<'a>>) -> Result<Vec<Row>> {
        Ok(self.run(target.into(), Collect::AllRows).await?.rows)
    }

    pub async fn fetch_optional<'a>(self, target: impl Into<Target<'a>>) -> Result<Option<Row>> {
        Ok(self
            .run(target.into(), Collect::FirstRow)
            .await?
            .rows
            .into_iter()
            .next())
    }

    pub async fn fetch_one<'a>(self, target: impl Into<Target<'a>>) -> Result<Row> {
        self.fetch_optional(target)
            .await?
            .ok_or_else(|| StoreError::NotFound("row".into()))
    }

    async fn run(self, target: Target<'_>, collect: Collect) -> Result<Outcome> {
        match target {
            Target::Tx(Tx::Lite(tx)) => {
                let conn = tx.conn()?;
                Ok(run_heavy(self.heavy, || {
                    lite_run(conn, &self.sql, &self.params, collect)
                })?)
            }
            Target::Tx(Tx::Any(tx)) => {
                let limit = tx.limits.for_statement(self.heavy);
                bounded(limit, any_run(&mut *tx.tx, self, collect)).await
            }
            Target::Pool(Pool::Any(pg)) => {
                let limit = pg.limits.for_statement(self.heavy);
                bounded(limit, any_run(&pg.pool, self, collect)).await
            }
            Target::Pool(Pool::LiteReaders(readers)) => {
                let conn = readers.acquire().await?;
                Ok(run_heavy(self.heavy, || {
                    lite_run(&conn, &self.sql, &self.params, collect)
                })?)
            }
            Target::Pool(Pool::LiteWriter(writer)) => {
                // An autocommit write: the lock may be another process's for a moment.
                let conn = writer.conn.clone().lock_owned().await;
                let (conn, out) = retry_locked(conn, |c| {
                    lite_run(c, &self.sql, &self.params, Collect::AllRows)
                })
                .await;
                drop(conn);
                let out = out?;
                if out.changes > 0 {
                    writer.checkpoint.committed();
                    sync_wal(writer.wal.clone()).await?;
                }
                Ok(match collect {
                    Collect::Nothing => Outcome {
                        rows: Vec::new(),
                        changes: out.changes,
                    },
                    _ => out,
                })
            }
        }
    }
}

impl<T: Decode> QueryScalar<T> {
    pub fn bind(mut self, value: impl IntoParam) -> Self {
        self.inner = self.inner.bind(value);
        self
    }

    pub async fn fetch_all<'a>(self, target: impl Into<Target<'a>>) -> Result<Vec<T>> {
        self.inner
            .fetch_all(target)
            .await?
            .iter()
            .map(|r| r.try_get(0usize))
            .collect()
    }

    pub async fn fetch_optional<'a>(self, target: impl Into<Target<'a>>) -> Result<Option<T>> {
        self.inner
            .fetch_optional(target)
            .await?
            .map(|r| r.try_get(0usize))
            .transpose()
    }

    pub async fn fetch_one<'a>(self, target: impl Into<Target<'a>>) -> Result<T> {
        self.inner.fetch_one(target).await?.try_get(0usize)
    }
}

async fn any_run<'e, E>(executor: E, q: Query, collect: Collect) -> Result<Outcome>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let mut query = sqlx::query(sqlx::AssertSqlSafe(q.sql));
    for p in q.params {
        query = match p {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Blob(v) => query.bind(v),
            Param::NullInt => query.bind(None::<i64>),
            Param::NullText => query.bind(None::<String>),
            Param::NullBlob => query.bind(None::<Vec<u8>>),
        };
    }
    Ok(match collect {
        Collect::Nothing => Outcome {
            rows: Vec::new(),
            changes: query.execute(executor).await?.rows_affected(),
        },
        Collect::FirstRow => Outcome {
            rows: query
                .fetch_optional(executor)
                .await?
                .map(Row::Any)
                .into_iter()
                .collect(),
            changes: 0,
        },
        Collect::AllRows => Outcome {
            rows: query
                .fetch_all(executor)
                .await?
                .into_iter()
                .map(Row::Any)
                .collect(),
            changes: 0,
        },
    })
}

/// Runs one statement on an SQLite connection. Parameters are written `$n` in the SQL (as for
/// PostgreSQL); SQLite numbers them by first appearance, so each is bound by its name.
fn lite_run(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Param],
    collect: Collect,
) -> rusqlite::Result<Outcome> {
    let mut stmt = conn.prepare_cached(sql)?;
    for i in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(i) {
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_string()))?,
            None => i,
        };
        let p = params
            .get(n.wrapping_sub(1))
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(format!("${n} (not bound)")))?;
        stmt.raw_bind_parameter(i, p)?;
    }
    let names: Arc<[String]> = match collect {
        Collect::Nothing => Arc::from(Vec::new()),
        _ => stmt
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    let width = stmt.column_count();
    let mut out = Vec::new();
    {
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next()? {
            let keep = match collect {
                Collect::Nothing => false,
                Collect::FirstRow => out.is_empty(),
                Collect::AllRows => true,
            };
            if keep {
                let mut values = Vec::with_capacity(width);
                for c in 0..width {
                    values.push(row.get::<_, LiteValue>(c)?);
                }
                out.push(Row::Lite(LiteRow {
                    names: names.clone(),
                    values,
                }));
            }
        }
    }
    let changes = if stmt.readonly() { 0 } else { conn.changes() };
    Ok(Outcome { rows: out, changes })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs `f` on the writer, retrying while another connection (a CLI process) holds the database
/// locked, sleeping between tries instead of blocking the thread in SQLite's busy handler. The
/// guard is handed back: a reference to it may not live across the sleep (a connection is not
/// `Sync`).
async fn retry_locked<T>(
    conn: OwnedMutexGuard<rusqlite::Connection>,
    f: impl Fn(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> (OwnedMutexGuard<rusqlite::Connection>, Result<T>) {
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let outcome = f(&conn);
        match outcome {
            Err(e) if is_busy(&e) && start.elapsed() < LOCKED_PATIENCE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return (conn, other.map_err(StoreError::from)),
        }
    }
}

// ---- connections ----

/// A connection source.
#[derive(Clone)]
pub(crate) enum Pool {
    Any(PgPool),
    /// SQLite: the one writer connection.
    LiteWriter(Arc<LiteWriter>),
    /// SQLite: read-only WAL readers, which never wait for the writer.
    LiteReaders(Arc<LiteReaders>),
}

/// The PostgreSQL pool and the time limits its statements run under.
#[derive(Clone)]
pub(crate) struct PgPool {
    pub pool: AnyPool,
    pub limits: PgTimeouts,
}

impl PgTimeouts {
    fn for_statement(&self, heavy: bool) -> Duration {
        if heavy {
            self.heavy_statement
        } else {
            self.statement
        }
    }

    /// A transaction's start: a connection from the pool (bounded by the pool's own acquire
    /// timeout), then BEGIN.
    fn begin(&self) -> Duration {
        self.acquire + self.statement
    }
}

/// Runs one PostgreSQL exchange, giving up after `limit`: a server that stops answering (a
/// network partition, a stopped VM) sends no error, so without this a command would wait for
/// TCP to notice, minutes later. The exchange is abandoned mid-flight; sqlx pings such a
/// connection before it goes back to the pool and closes it when the ping fails.
async fn bounded<T>(
    limit: Duration,
    exchange: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, exchange).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("wharf_store_timeouts").increment(1);
            Err(StoreError::Unavailable(format!(
                "the database did not answer within {} ms",
                limit.as_millis()
            )))
        }
    }
}

pub(crate) struct LiteWriter {
    conn: Arc<Mutex<rusqlite::Connection>>,
    wal: PathBuf,
    checkpoint: Arc<Checkpointer>,
    /// Write transactions waiting for `conn`: background work (the trigram index) yields to them.
    waiting: AtomicUsize,
}

/// Counts a writer in `LiteWriter::waiting` while it waits; counted out when dropped, so a wait
/// given up (a cancelled request) is counted out too.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The writer's side of the checkpointer thread; dropping it ends the thread.
pub(crate) struct Checkpointer {
    wake: std::sync::mpsc::SyncSender<()>,
    commits: AtomicU64,
}

impl Checkpointer {
    fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % COMMITS_PER_CHECKPOINT
            == COMMITS_PER_CHECKPOINT - 1
        {
            // Full means a wake-up is pending already.
            let _ = self.wake.try_send(());
        }
    }
}

pub(crate) struct LiteReaders {
    path: PathBuf,
    idle: StdMutex<Vec<rusqlite::Connection>>,
    slots: Arc<Semaphore>,
}

/// A reader connection on loan; goes back to the pool when dropped.
pub(crate) struct ReaderGuard {
    conn: Option<rusqlite::Connection>,
    pool: Arc<LiteReaders>,
    _slot: OwnedSemaphorePermit,
}

impl std::ops::Deref for ReaderGuard {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        // Some until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(conn);
        }
    }
}

fn open_lite(path: &Path, setup: &str) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(setup)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl LiteReaders {
    pub fn open(path: &Path, max: usize) -> Arc<LiteReaders> {
        Arc::new(LiteReaders {
            path: path.to_path_buf(),
            idle: StdMutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max)),
        })
    }

    pub async fn acquire(self: &Arc<Self>) -> Result<ReaderGuard> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("reader pool closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => open_lite(
                &self.path,
                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;",
            )?,
        };
        Ok(ReaderGuard {
            conn: Some(conn),
            pool: self.clone(),
            _slot: slot,
        })
    }
}

impl LiteWriter {
    /// Opens the writer connection of an existing (migrated) database. `synchronous = NORMAL`:
    /// commits write the WAL without syncing it and `Tx::commit` syncs it afterwards for the
    /// transactions that must be durable, outside the write lock. Automatic checkpoints are off:
    /// the checkpointer thread runs them, so no commit stalls a runtime thread on a sync.
    pub fn open(path: &Path) -> Result<Arc<LiteWriter>> {
        let conn = open_lite(
            path,
            &format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = 0; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA journal_size_limit = {WAL_RESTART_BYTES};"
            ),
        )?;
        let conn = Arc::new(Mutex::new(conn));
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        spawn_checkpointer(path.to_path_buf(), wal.clone(), conn.clone(), woken);
        let checkpoint = Arc::new(Checkpointer {
            wake,
            commits: AtomicU64::new(0),
        });
        Ok(Arc::new(LiteWriter {
            conn,
            wal,
            checkpoint,
            waiting: AtomicUsize::new(0),
        }))
    }

    pub fn wal_path(&self) -> &Path {
        &self.wal
    }
}

/// How often the checkpointer looks at the WAL's size.
const WAL_CHECK_EVERY: Duration = Duration::from_millis(100);
/// Checks between two PASSIVE checkpoints when nothing else wakes the checkpointer.
const CHECKS_PER_PASSIVE: u32 = 10;
/// WAL size past which the checkpointer restarts the log itself (see `spawn_checkpointer`).
pub(crate) const WAL_RESTART_BYTES: u64 = 16 * 1024 * 1024;
/// Octets SQLite has allocated in this process (page caches, statements, schemas of every
/// connection), for the `wharf_store_sqlite_memory_bytes` gauge: it tells SQLite's share of the
/// resident memory from the rest.
#[allow(
    unsafe_code,
    reason = "sqlite3_memory_used has no safe wrapper in rusqlite; see SAFETY"
)]
fn sqlite_memory_used() -> i64 {
    // SAFETY: sqlite3_memory_used takes no arguments and only reads SQLite's global memory
    // statistics, which SQLite guards with its own mutex; it is safe to call from any thread at
    // any time, before or after connections are opened.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// How long a restarting checkpoint waits for the readers still on the old log. Writers wait
/// meanwhile, so this is short; readers' transactions are single statements or a few of them.
const RESTART_PATIENCE: Duration = Duration::from_millis(250);

/// Checkpoints the WAL on a thread of its own, so a checkpoint's syncs never stall a request.
///
/// PASSIVE checkpoints (once a second and whenever the writer has committed a batch) never block
/// anyone, but they only let the log start over when they catch a moment with no write since
/// they began and no reader on an older snapshot. Under steady load (IMAP sessions reading,
/// mail and flag changes arriving) that moment never comes and the WAL grows without bound:
/// 49.6 GB in 10 minutes under 50 IMAP clients (issue 15). So once the WAL passes
/// `WAL_RESTART_BYTES` the checkpointer takes the writer connection's lock (writers queue on it,
/// asynchronously), and runs a TRUNCATE checkpoint (after a PASSIVE one without the lock, so that
/// little is left to copy while writers wait): it copies the rest of the log into the database,
/// waits up to `RESTART_PATIENCE` for readers still on an older snapshot (new readers read the
/// database and do not hold it up), and empties the log. When readers hold it longer, it tries
/// again at the next check. The thread ends (with a final TRUNCATE checkpoint) when the writer
/// is dropped.
fn spawn_checkpointer(
    path: PathBuf,
    wal: PathBuf,
    writer: Arc<Mutex<rusqlite::Connection>>,
    woken: std::sync::mpsc::Receiver<()>,
) {
    let spawned = std::thread::Builder::new()
        .name("wharf-sqlite-checkpoint".into())
        .spawn(move || {
            let setup = format!(
                "PRAGMA busy_timeout = {};",
                RESTART_PATIENCE.as_millis()
            );
            let conn = match open_lite(&path, &setup) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "store: checkpointer cannot open the database");
                    return;
                }
            };
            let mut checks = 0u32;
            loop {
                let woken = match woken.recv_timeout(WAL_CHECK_EVERY) {
                    Ok(()) => true,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        checkpoint(&conn, "TRUNCATE");
                        return;
                    }
                };
                checks += 1;
                let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                metrics::gauge!("wharf_store_wal_bytes").set(size as f64);
                metrics::gauge!("wharf_store_sqlite_memory_bytes").set(sqlite_memory_used() as f64);
                if size > WAL_RESTART_BYTES {
                    // Copy and sync what readers allow first, with writes going on: the restart
                    // below holds every writer (STORE, APPEND, EXPUNGE) for as long as it runs,
                    // and then has only the frames committed since to copy and sync (10-20 ms
                    // under 50 logged-in IMAP sessions, up to 56 ms with other dirty data on the
                    // filesystem).
                    checkpoint(&conn, "PASSIVE");
                    // Outside any runtime: this thread may block on the async mutex.
                    let _writes_held = writer.blocking_lock();
                    let done = checkpoint(&conn, "TRUNCATE");
                    metrics::counter!("wharf_store_wal_restarts", "done" => if done { "yes" } else { "busy" })
                        .increment(1);
                    if !done {
                        tracing::debug!(size, "store: WAL restart waited out a reader; retrying");
                    }
                    checks = 0;
                } else if woken || checks >= CHECKS_PER_PASSIVE {
                    checkpoint(&conn, "PASSIVE");
                    checks = 0;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "store: cannot start the checkpointer thread");
    }
}

/// Runs one checkpoint; true when it copied the whole log (and, for RESTART and TRUNCATE,
/// started it over).
fn checkpoint(conn: &rusqlite::Connection, mode: &str) -> bool {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    match conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    }) {
        Ok((busy, log, copied)) => busy == 0 && log == copied,
        Err(e) => {
            tracing::warn!(error = %e, mode, "store: WAL checkpoint failed");
            false
        }
    }
}

/// Makes every commit so far durable: one fdatasync of the `-wal` file, on a blocking thread.
/// Each commit wrote all its frames into the WAL before COMMIT returned, so this gives the
/// guarantee of `synchronous = FULL`. Opened each time: a file SQLite recreated would not be the
/// one an old descriptor points at.
pub(crate) async fn sync_wal(path: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => f.sync_data(),
            // Gone only after a checkpoint synced everything into the database.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| StoreError::Backend(format!("WAL sync task: {e}")))??;
    Ok(())
}

// ---- transactions ----

/// How a write transaction must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Synced before `commit` returns.
    Durable,
    /// Visible at once, durable with the next durable commit or checkpoint (flag changes).
    Relaxed,
    /// Committed; the caller syncs (`sync_wal`) before it answers anyone (the group commit).
    CallerSyncs,
}

/// A transaction of either backend. Dropped without `commit`, it rolls back.
pub(crate) enum Tx {
    Any(AnyTx),
    Lite(LiteTx),
}

/// A PostgreSQL transaction and the time limits its statements run under.
pub(crate) struct AnyTx {
    tx: sqlx::Transaction<'static, Any>,
    limits: PgTimeouts,
}

pub(crate) struct LiteTx {
    conn: Option<LiteConn>,
    /// Set for durable writes: the WAL to sync after COMMIT.
    sync: Option<PathBuf>,
    /// Set for writes: the checkpointer to tell after COMMIT.
    checkpoint: Option<Arc<Checkpointer>>,
}

enum LiteConn {
    Writer(OwnedMutexGuard<rusqlite::Connection>),
    Reader(ReaderGuard),
}

impl LiteTx {
    fn conn(&self) -> Result<&rusqlite::Connection> {
        match &self.conn {
            Some(LiteConn::Writer(c)) => Ok(c),
            Some(LiteConn::Reader(c)) => Ok(c),
            None => Err(StoreError::Backend("transaction already ended".into())),
        }
    }
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            let c: &rusqlite::Connection = match conn {
                LiteConn::Writer(c) => c,
                LiteConn::Reader(c) => c,
            };
            if !c.is_autocommit()
                && let Err(e) = c.execute_batch("ROLLBACK")
            {
                tracing::warn!(error = %e, "store: rollback failed");
            }
        }
    }
}

impl Tx {
    /// SQLite: rows changed on this connection since it opened, counting the statements a
    /// statement ran inside (triggers, a virtual table's writes to its own tables); what FTS5
    /// documents for telling whether its `merge` command found work. PostgreSQL has no such
    /// count: an error.
    pub fn total_changes(&self) -> Result<u64> {
        match self {
            Tx::Lite(tx) => Ok(tx.conn()?.total_changes()),
            Tx::Any(_) => Err(StoreError::Backend("total_changes is SQLite's".into())),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Any(tx) => bounded(tx.limits.statement, async { Ok(tx.tx.commit().await?) }).await,
            Tx::Lite(mut tx) => {
                tx.conn()?.execute_batch("COMMIT")?;
                // Release the connection (the write lock) before syncing.
                tx.conn = None;
                if let Some(c) = tx.checkpoint.take() {
                    c.committed();
                }
                if let Some(wal) = tx.sync.take() {
                    sync_wal(wal).await?;
                }
                Ok(())
            }
        }
    }
}

impl Pool {
    /// A write transaction. On SQLite it holds the one writer connection and SQLite's write lock
    /// (BEGIN IMMEDIATE: a deferred transaction that upgrades later can fail outright with
    /// SQLITE_BUSY_SNAPSHOT when a CLI process wrote in between).
    pub async fn begin_write(&self, durability: Durability) -> Result<Tx> {
        match self {
            Pool::Any(pg) => {
                bounded(pg.limits.begin(), async {
                    // One round trip: the BEGIN goes as a simple query, which may hold several
                    // statements (a separate SET LOCAL was one more per write transaction).
                    let tx = match durability {
                        Durability::Relaxed => {
                            pg.pool
                                .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                                .await?
                        }
                        Durability::Durable | Durability::CallerSyncs => pg.pool.begin().await?,
                    };
                    Ok(Tx::Any(AnyTx {
                        tx,
                        limits: pg.limits,
                    }))
                })
                .await
            }
            Pool::LiteWriter(w) => {
                let waiting = Waiting::new(&w.waiting);
                let conn = w.conn.clone().lock_owned().await;
                drop(waiting);
                let (conn, begun) =
                    retry_locked(conn, |c| c.execute_batch("BEGIN IMMEDIATE")).await;
                begun?;
                Ok(Tx::Lite(LiteTx {
                    conn: Some(LiteConn::Writer(conn)),
                    sync: (durability == Durability::Durable).then(|| w.wal.clone()),
                    checkpoint: Some(w.checkpoint.clone()),
                }))
            }
            Pool::LiteReaders(_) => Err(StoreError::Backend(
                "write transaction on the reader pool".into(),
            )),
        }
    }

    /// A read-only transaction that sees one consistent snapshot.
    pub async fn begin_read(&self) -> Result<Tx> {
        match self {
            Pool::Any(pg) => {
                bounded(pg.limits.begin(), async {
                    let tx = pg
                        .pool
                        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .await?;
                    Ok(Tx::Any(AnyTx {
                        tx,
                        limits: pg.limits,
                    }))
                })
                .await
            }
            Pool::LiteReaders(r) => {
                let conn = r.acquire().await?;
                conn.execute_batch("BEGIN")?;
                Ok(Tx::Lite(LiteTx {
                    conn: Some(LiteConn::Reader(conn)),
                    sync: None,
                    checkpoint: None,
                }))
            }
            Pool::LiteWriter(w) => {
                let conn = w.conn.clone().lock_owned().await;
                conn.execute_batch("BEGIN")?;
                Ok(Tx::Lite(LiteTx {
                    conn: Some(LiteConn::Writer(conn)),
                    sync: None,
                    checkpoint: None,
                }))
            }
        }
    }

    /// PostgreSQL: runs `sql`, which may hold several statements, as one simple query (one
    /// round trip) and returns the rows they produce. A simple query has no parameters: every
    /// value in `sql` is a literal the caller has made safe.
    pub async fn simple_query(&self, sql: String) -> Result<Vec<Row>> {
        match self {
            Pool::Any(pg) => {
                bounded(pg.limits.begin(), async {
                    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&pg.pool)
                        .await?;
                    Ok(rows.into_iter().map(Row::Any).collect())
                })
                .await
            }
            _ => Err(StoreError::Backend(
                "a multi-statement simple query is for PostgreSQL".into(),
            )),
        }
    }

    /// SQLite: write transactions waiting for the writer connection right now (0 elsewhere).
    pub fn writers_waiting(&self) -> usize {
        match self {
            Pool::LiteWriter(w) => w.waiting.load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// The sqlx pool (PostgreSQL).
    pub fn any(&self) -> Option<&AnyPool> {
        match self {
            Pool::Any(p) => Some(&p.pool),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, msg) => {
                let text = msg.clone().unwrap_or_else(|| e.to_string());
                match (f.code, f.extended_code) {
                    (ErrorCode::ConstraintViolation, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
                    | (
                        ErrorCode::ConstraintViolation,
                        rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
                    ) => StoreError::AlreadyExists(text),
                    (
                        ErrorCode::ConstraintViolation,
                        rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
                    ) => StoreError::Invalid(text),
                    _ => StoreError::Backend(text),
                }
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

// Store futures cross threads (`async_trait` requires Send): so must everything held across an
// await in them.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<Tx>();
    is_send::<Row>();
    is_send::<Query>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Pool, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (a INTEGER, b TEXT, c BLOB);")
            .unwrap();
        drop(c);
        let writer = Pool::LiteWriter(LiteWriter::open(&path).unwrap());
        let readers = Pool::LiteReaders(LiteReaders::open(&path, 2));
        (dir, writer, readers)
    }

    #[tokio::test]
    async fn parameters_bind_by_number_not_by_position() {
        let (_dir, w, r) = setup();
        let mut tx = w.begin_write(Durability::Durable).await.unwrap();
        // `$2` appears first: SQLite numbers it 1, and it must still get the second value.
        query("INSERT INTO t (b, a, c) VALUES ($2, $1, $3)")
            .bind(7i64)
            .bind("seven")
            .bind(None::<Vec<u8>>)
            .execute(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = query("SELECT a, b, c FROM t WHERE a = $1 AND b = $1 || '' OR a = $1")
            .bind(7i64)
            .fetch_one(&r)
            .await
            .unwrap();
        assert_eq!(row.try_get::<i64, _>("a").unwrap(), 7);
        assert_eq!(row.try_get::<String, _>(1usize).unwrap(), "seven");
        assert_eq!(row.try_get::<Option<Vec<u8>>, _>("c").unwrap(), None);
        assert!(
            row.try_get::<i64, _>("b").is_err(),
            "text is not an integer"
        );
        assert!(row.try_get::<i64, _>("nope").is_err());
        let n: Vec<i64> = query_scalar("SELECT a FROM t").fetch_all(&r).await.unwrap();
        assert_eq!(n, vec![7]);
    }

    #[tokio::test]
    async fn dropped_transaction_rolls_back_and_frees_the_writer() {
        let (_dir, w, r) = setup();
        {
            let mut tx = w.begin_write(Durability::Relaxed).await.unwrap();
            query("INSERT INTO t (a) VALUES (1)")
                .execute(&mut tx)
                .await
                .unwrap();
        }
        let mut tx = w.begin_write(Durability::Durable).await.unwrap();
        let done = query("INSERT INTO t (a) VALUES (2), (3)")
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 2);
        tx.commit().await.unwrap();
        let all: Vec<i64> = query_scalar("SELECT a FROM t ORDER BY a")
            .fetch_all(&r)
            .await
            .unwrap();
        assert_eq!(all, vec![2, 3]);
    }

    #[tokio::test]
    async fn a_writer_waits_for_another_process_lock_without_blocking_the_runtime() {
        let (dir, w, r) = setup();
        let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let write = tokio::spawn(async move {
            let mut tx = w.begin_write(Durability::Durable).await.unwrap();
            query("INSERT INTO t (a) VALUES (9)")
                .execute(&mut tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
        // The runtime (current-thread) still runs other tasks while the writer waits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!write.is_finished());
        let none: Vec<i64> = query_scalar("SELECT a FROM t").fetch_all(&r).await.unwrap();
        assert!(none.is_empty());
        other.execute_batch("COMMIT").unwrap();
        write.await.unwrap();
        let nine: Vec<i64> = query_scalar("SELECT a FROM t").fetch_all(&r).await.unwrap();
        assert_eq!(nine, vec![9]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heavy_statements_run_on_a_multi_thread_runtime_and_inside_transactions() {
        let (_dir, w, r) = setup();
        let mut tx = w.begin_write(Durability::Durable).await.unwrap();
        for i in 0..1000i64 {
            query("INSERT INTO t (a) VALUES ($1)")
                .bind(i)
                .execute(&mut tx)
                .await
                .unwrap();
        }
        let gone = query("DELETE FROM t WHERE a >= 500")
            .heavy()
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(gone.rows_affected(), 500);
        tx.commit().await.unwrap();
        let n: i64 = query("SELECT COUNT(*) FROM t WHERE instr(CAST(a AS TEXT), '9') > 0")
            .heavy()
            .fetch_one(&r)
            .await
            .unwrap()
            .try_get(0usize)
            .unwrap();
        assert_eq!(
            n,
            (0..500)
                .filter(|i: &i64| i.to_string().contains('9'))
                .count() as i64
        );
    }

    #[tokio::test]
    async fn constraint_errors_map_to_store_errors() {
        let (_dir, w, _r) = setup();
        query("CREATE UNIQUE INDEX t_a ON t (a)")
            .execute(&w)
            .await
            .unwrap();
        query("INSERT INTO t (a) VALUES (1)")
            .execute(&w)
            .await
            .unwrap();
        let again = query("INSERT INTO t (a) VALUES (1)").execute(&w).await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists(_))),
            "{again:?}"
        );
    }
}
