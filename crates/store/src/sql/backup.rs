//! Online backup and restore of the embedded (SQLite) store: `wharf backup DIR` and
//! `wharf restore DIR`.
//!
//! A backup is taken by a separate process while the server runs and takes mail. It reads the
//! database file directly, so it needs nothing from the server's memory:
//!
//! 1. **Pin, then snapshot, in one instant.** A write transaction on the live database
//!    (`BEGIN IMMEDIATE`: no other commit can happen while it is open) pins every blob row that
//!    has a reference (`pins + 1`, `pinned_until` ≥ now + `BACKUP_PIN_SECS`); while it still holds
//!    the write lock, a second connection opens its read transaction, then the pins commit. The
//!    read snapshot is therefore exactly the state the pins were taken on: every blob the
//!    snapshot refers to is pinned, and the collector (`blob_life`, rule 3) never claims a pinned
//!    row, so a body expunged and released after the snapshot stays on disk until the backup has
//!    copied it — whatever `[store] blob_grace_secs` is (0 included).
//! 2. **Copy the snapshot** with SQLite's online backup API, from that read transaction (the
//!    server keeps reading and writing; only the WAL's restart waits for the copy).
//! 3. **Copy the blobs the snapshot names** (`messages` and `queue`), hashing each while it is
//!    copied: a file that is missing or whose SHA-256 is not its name fails the backup. Blobs
//!    written after the snapshot are not copied (nothing in the snapshot needs them).
//! 4. **Unpin** (always, also when a step failed; a backup process that dies leaves pins that
//!    expire after `BACKUP_PIN_SECS`, keeping some bodies that long).
//! 5. Write `manifest.json` last: a folder without it is not a backup.
//!
//! In the copy, the state that belonged to running processes is cleared: pins, registered
//! nodes, POP3 maildrop locks and queue leases.
//!
//! Restore copies into an empty store only, checking the database file's SHA-256 against the
//! manifest and every blob's content against its name while it copies; the database file is
//! put in place last, so a failed restore leaves no database behind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::blob::{sync_dir, valid_hash};
use crate::{Result, StoreConfig, StoreError};

/// The manifest's `format`; restore refuses newer ones.
pub const FORMAT_VERSION: u32 = 1;
/// Files and folders inside a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";
pub const DB_FILE: &str = "wharf.db";
/// The PostgreSQL backend's database, as `pg_dump --format=custom` wrote it.
pub const PG_DUMP_FILE: &str = "wharf.pgdump";
pub const BLOB_DIR: &str = "blobs";
/// How long the backup's pins protect the blobs of its snapshot if it never unpins (it died).
/// A backup slower than this fails rather than copy a body that may have been collected.
pub const BACKUP_PIN_SECS: i64 = 12 * 3600;
/// How long the backup waits for the server's writer to let it pin.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// Hashes per unpin statement.
const CHUNK: usize = 500;

/// `manifest.json`: what a backup holds, written after everything else.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// `FORMAT_VERSION` of the writer.
    pub format: u32,
    /// The `wharf` version that took the backup.
    pub wharf_version: String,
    /// `sqlite` (the only one `backup` writes today).
    pub backend: String,
    /// Unix seconds of the snapshot.
    pub created_at: i64,
    pub database: DatabaseFile,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseFile {
    /// Relative to the backup folder.
    pub file: String,
    pub bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub domains: u64,
    pub accounts: u64,
    pub mailboxes: u64,
    pub messages: u64,
    pub queue: u64,
    /// Blob files in `blobs/` (every one the snapshot names, each once).
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// The SQLite database file a `sqlite:` store url names.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Takes an online backup of the store `cfg` names into `dir` (missing or empty). The server
/// may be running. Blocking work runs on a blocking thread.
pub async fn backup(cfg: &StoreConfig, dir: &Path, wharf_version: &str) -> Result<Manifest> {
    if is_postgres(&cfg.url) {
        return super::backup_pg::backup(cfg, dir, wharf_version).await;
    }
    let cfg = cfg.clone();
    let dir = dir.to_path_buf();
    let version = wharf_version.to_string();
    tokio::task::spawn_blocking(move || backup_blocking(&cfg, &dir, &version))
        .await
        .map_err(|e| StoreError::Backend(format!("backup task: {e}")))?
}

/// Restores the backup in `dir` into the store `cfg` names, which must be empty (no database
/// file, or an empty one, and no blob files). Returns the backup's manifest.
pub async fn restore(cfg: &StoreConfig, dir: &Path) -> Result<Manifest> {
    if is_postgres(&cfg.url) {
        return super::backup_pg::restore(cfg, dir).await;
    }
    let cfg = cfg.clone();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || restore_blocking(&cfg, &dir))
        .await
        .map_err(|e| StoreError::Backend(format!("restore task: {e}")))?
}

/// Reads and checks `dir/manifest.json` (format, backend).
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).map_err(|e| {
        StoreError::Invalid(format!(
            "{} is not a complete backup: cannot read {}: {e}",
            dir.display(),
            path.display()
        ))
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))?;
    if m.format == 0 || m.format > FORMAT_VERSION {
        return Err(StoreError::Invalid(format!(
            "{}: backup format {} is not supported (this wharf reads format {FORMAT_VERSION})",
            path.display(),
            m.format
        )));
    }
    let expected_file = match m.backend.as_str() {
        "sqlite" => DB_FILE,
        "postgres" => PG_DUMP_FILE,
        other => {
            return Err(StoreError::Invalid(format!(
                "{}: backend {other:?} cannot be restored by wharf restore",
                path.display()
            )));
        }
    };
    if m.database.file != expected_file {
        return Err(StoreError::Invalid(format!(
            "{}: unexpected database file {:?}",
            path.display(),
            m.database.file
        )));
    }
    Ok(m)
}

// ---- backup ----

fn backup_blocking(cfg: &StoreConfig, dir: &Path, version: &str) -> Result<Manifest> {
    if is_postgres(&cfg.url) {
        return Err(StoreError::Invalid(
            "the SQLite backup path was given a PostgreSQL store".into(),
        ));
    }
    let db = sqlite_path(&cfg.url)
        .ok_or_else(|| StoreError::Invalid(format!("not a SQLite store url: {}", cfg.url)))?;
    if !db.is_file() {
        return Err(StoreError::NotFound(format!(
            "database {} (nothing to back up)",
            db.display()
        )));
    }
    prepare_target(dir)?;
    let live = open_live(&db)?;
    let reader = open_live(&db)?;
    let pinned = pin_and_snapshot(&live, &reader)?;
    let result = copy_out(&reader, cfg, dir, version);
    let unpinned = unpin(&live, &pinned);
    let manifest = result?;
    if let Err(e) = unpinned {
        // The pins expire on their own; the backup itself is complete.
        tracing::warn!(error = %e, "backup: could not release the blob pins (they expire in {BACKUP_PIN_SECS} s)");
    }
    Ok(manifest)
}

/// `dir` must be missing or hold no backup yet (no manifest, database or blob folder: the caller
/// may have put other files there first); it is made private (it will hold mail).
pub(super) fn prepare_target(dir: &Path) -> Result<()> {
    if dir.exists() {
        if let Some(taken) = [MANIFEST_FILE, DB_FILE, BLOB_DIR]
            .iter()
            .find(|name| dir.join(name).exists())
        {
            return Err(StoreError::AlreadyExists(format!(
                "{} already holds a backup ({taken}); choose a new folder",
                dir.display()
            )));
        }
    } else {
        fs::create_dir_all(dir)?;
    }
    set_private(dir)?;
    Ok(())
}

#[cfg(unix)]
fn set_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn set_private(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(format!("database busy: {e}"))
        }
        _ => StoreError::Backend(format!("sqlite: {e}")),
    }
}

fn open_live(db: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(LOCK_WAIT).map_err(sql_err)?;
    Ok(conn)
}

/// The blob rows the backup pinned, with the generation pinned.
type Pinned = Vec<(String, i64)>;

/// Step 1 of the module doc: pins and the read snapshot describe the same instant. Leaves
/// `reader` inside its read transaction.
fn pin_and_snapshot(live: &Connection, reader: &Connection) -> Result<Pinned> {
    live.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
    let pinned = (|| -> Result<Pinned> {
        let until = chrono::Utc::now().timestamp() + BACKUP_PIN_SECS;
        let mut stmt = live
            .prepare(
                "UPDATE blobs SET pins = pins + 1, \
                   pinned_until = CASE WHEN pinned_until > ?1 THEN pinned_until ELSE ?1 END \
                 WHERE refcount > 0 AND deleting_since IS NULL RETURNING hash, generation",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map([until], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql_err)?;
        let pinned = rows
            .collect::<rusqlite::Result<Pinned>>()
            .map_err(sql_err)?;
        drop(stmt);
        // The read transaction starts while this one holds the write lock: it sees exactly the
        // state the pins were taken on (without the pins, which are not committed yet).
        reader.execute_batch("BEGIN").map_err(sql_err)?;
        reader
            .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get::<_, i64>(0))
            .map_err(sql_err)?;
        Ok(pinned)
    })();
    match pinned {
        Ok(pinned) => {
            if let Err(e) = live.execute_batch("COMMIT") {
                let _ = reader.execute_batch("ROLLBACK");
                let _ = live.execute_batch("ROLLBACK");
                return Err(sql_err(e));
            }
            Ok(pinned)
        }
        Err(e) => {
            let _ = reader.execute_batch("ROLLBACK");
            let _ = live.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Releases the backup's pins: one less on each row still of the generation pinned.
fn unpin(live: &Connection, pinned: &Pinned) -> Result<()> {
    for chunk in pinned.chunks(CHUNK) {
        live.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
        let done = (|| -> Result<()> {
            let mut stmt = live
                .prepare_cached(
                    "UPDATE blobs SET pins = CASE WHEN pins > 1 THEN pins - 1 ELSE 0 END \
                     WHERE hash = ?1 AND generation = ?2 AND deleting_since IS NULL",
                )
                .map_err(sql_err)?;
            for (hash, generation) in chunk {
                stmt.execute(rusqlite::params![hash, generation])
                    .map_err(sql_err)?;
            }
            Ok(())
        })();
        match done {
            Ok(()) => live.execute_batch("COMMIT").map_err(sql_err)?,
            Err(e) => {
                let _ = live.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Steps 2, 3 and 5: the snapshot into `dir/wharf.db`, the blobs it names, the manifest.
fn copy_out(reader: &Connection, cfg: &StoreConfig, dir: &Path, version: &str) -> Result<Manifest> {
    let created_at = chrono::Utc::now().timestamp();
    let tmp = dir.join(format!("{DB_FILE}.partial"));
    let final_db = dir.join(DB_FILE);
    {
        let mut dst = Connection::open(&tmp).map_err(sql_err)?;
        let copied = (|| -> Result<()> {
            let backup = rusqlite::backup::Backup::new(reader, &mut dst).map_err(sql_err)?;
            // One step: every page, from the read transaction opened with the pins.
            match backup.step(-1).map_err(sql_err)? {
                rusqlite::backup::StepResult::Done => Ok(()),
                other => Err(StoreError::Unavailable(format!(
                    "database copy did not finish ({other:?}); try again"
                ))),
            }
        })();
        let _ = reader.execute_batch("COMMIT");
        copied?;
        scrub_copy(&dst)?;
        drop(dst);
    }
    let (needed, counts) = {
        let copy =
            Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql_err)?;
        check_integrity(&copy)?;
        (referenced_blobs(&copy)?, count_rows(&copy)?)
    };
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, &final_db)?;

    let blob_out = dir.join(BLOB_DIR);
    fs::create_dir_all(&blob_out)?;
    let mut blob_bytes = 0u64;
    let mut written = Vec::new();
    for hash in &needed {
        let from = blob_path(&cfg.blob_dir, hash);
        let to = blob_path(&blob_out, hash);
        blob_bytes += copy_blob(&from, &to, hash).map_err(|e| match e {
            StoreError::Io(io) if io.kind() == io::ErrorKind::NotFound => {
                StoreError::Backend(format!(
                    "blob {hash}, named by the snapshot, is missing from {} (store damaged?)",
                    cfg.blob_dir.display()
                ))
            }
            other => other,
        })?;
        written.push(to);
    }
    sync_tree(&blob_out, &written)?;

    let (bytes, sha256) = hash_file(&final_db)?;
    let manifest = Manifest {
        format: FORMAT_VERSION,
        wharf_version: version.to_string(),
        backend: "sqlite".into(),
        created_at,
        database: DatabaseFile {
            file: DB_FILE.into(),
            bytes,
            sha256,
        },
        counts: Counts {
            blobs: needed.len() as u64,
            blob_bytes,
            ..counts
        },
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| StoreError::Backend(format!("manifest: {e}")))?;
    let tmp_manifest = dir.join(format!("{MANIFEST_FILE}.partial"));
    {
        let mut f = File::create(&tmp_manifest)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    fs::rename(&tmp_manifest, dir.join(MANIFEST_FILE))?;
    sync_dir(dir)?;
    Ok(manifest)
}

/// Clears, in the copy, what belonged to running processes, and makes it one self-contained
/// file (rollback journal instead of WAL; the server turns WAL on again when it opens it).
fn scrub_copy(copy: &Connection) -> Result<()> {
    let mode: String = copy
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StoreError::Backend(format!(
            "backup copy stayed in journal mode {mode}"
        )));
    }
    copy.execute_batch(
        "BEGIN; \
         UPDATE blobs SET pins = 0, pinned_until = 0 WHERE pins <> 0 OR pinned_until <> 0; \
         DELETE FROM nodes; \
         DELETE FROM maildrop_locks; \
         UPDATE queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL; \
         COMMIT;",
    )
    .map_err(sql_err)?;
    Ok(())
}

fn check_integrity(conn: &Connection) -> Result<()> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sql_err)?;
    if verdict != "ok" {
        return Err(StoreError::Backend(format!(
            "database check failed: {verdict}"
        )));
    }
    Ok(())
}

/// Every hash a message or a queue entry of `conn` names.
fn referenced_blobs(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut stmt = conn
        .prepare("SELECT blob_hash FROM messages UNION SELECT blob_hash FROM queue")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_err)?;
    let mut out = BTreeSet::new();
    for h in rows {
        let h = h.map_err(sql_err)?;
        if !valid_hash(&h) {
            return Err(StoreError::Backend(format!(
                "invalid blob name {h:?} in the database"
            )));
        }
        out.insert(h);
    }
    Ok(out)
}

fn count_rows(conn: &Connection) -> Result<Counts> {
    let count = |table: &str| -> Result<u64> {
        let n: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(Counts {
        domains: count("domains")?,
        accounts: count("accounts")?,
        mailboxes: count("mailboxes")?,
        messages: count("messages")?,
        queue: count("queue")?,
        blobs: 0,
        blob_bytes: 0,
    })
}

// ---- restore ----

fn restore_blocking(cfg: &StoreConfig, dir: &Path) -> Result<Manifest> {
    if is_postgres(&cfg.url) {
        return Err(StoreError::Invalid(
            "the SQLite backup path was given a PostgreSQL store".into(),
        ));
    }
    let manifest = read_manifest(dir)?;
    let db = sqlite_path(&cfg.url)
        .ok_or_else(|| StoreError::Invalid(format!("not a SQLite store url: {}", cfg.url)))?;
    check_empty_target(&db, &cfg.blob_dir)?;
    let parent = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    fs::create_dir_all(&parent)?;
    let tmp = parent.join(format!(
        "{}.restoring",
        db.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("wharf.db")
    ));
    let blob_dir_existed = cfg.blob_dir.exists();
    let mut written = Vec::new();
    let result = restore_files(&manifest, dir, cfg, &db, &tmp, &mut written);
    if result.is_err() {
        // Leave the target as empty as it was.
        let _ = fs::remove_file(&tmp);
        for f in &written {
            let _ = fs::remove_file(f);
        }
        if !blob_dir_existed {
            let _ = fs::remove_dir_all(&cfg.blob_dir);
        }
    }
    result.map(|()| manifest)
}

fn restore_files(
    manifest: &Manifest,
    dir: &Path,
    cfg: &StoreConfig,
    db: &Path,
    tmp: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    // The database, hashed as it is copied: the bytes installed are the bytes checked.
    let source = dir.join(DB_FILE);
    let (bytes, sha256) = copy_hashed(&source, tmp)?;
    if bytes != manifest.database.bytes || sha256 != manifest.database.sha256 {
        return Err(StoreError::Invalid(format!(
            "{} does not match the manifest (sha256 {sha256}, {bytes} bytes; manifest says {}, {} bytes): \
             the backup is damaged or was changed",
            source.display(),
            manifest.database.sha256,
            manifest.database.bytes
        )));
    }
    let needed = {
        let copy =
            Connection::open_with_flags(tmp, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql_err)?;
        check_integrity(&copy)?;
        referenced_blobs(&copy)?
    };
    if needed.len() as u64 != manifest.counts.blobs {
        return Err(StoreError::Invalid(format!(
            "the database names {} blobs, the manifest {}",
            needed.len(),
            manifest.counts.blobs
        )));
    }
    let blob_in = dir.join(BLOB_DIR);
    fs::create_dir_all(&cfg.blob_dir)?;
    for hash in &needed {
        let from = blob_path(&blob_in, hash);
        let to = blob_path(&cfg.blob_dir, hash);
        copy_blob(&from, &to, hash).map_err(|e| match e {
            StoreError::Io(io) if io.kind() == io::ErrorKind::NotFound => StoreError::Invalid(
                format!("the backup lacks blob {hash}, which its database names"),
            ),
            other => other,
        })?;
        written.push(to);
    }
    sync_tree(&cfg.blob_dir, written)?;
    // Last: the database appears only once everything it names is in place.
    File::open(tmp)?.sync_all()?;
    fs::rename(tmp, db)?;
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Refuses a target holding any data: a database file with content (or its WAL), or blob files.
fn check_empty_target(db: &Path, blob_dir: &Path) -> Result<()> {
    let nonempty = |p: &Path| fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false);
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if nonempty(db) || nonempty(&wal) {
        return Err(StoreError::AlreadyExists(format!(
            "{} already holds a store; restore only into a fresh data folder (move it away first)",
            db.display()
        )));
    }
    check_empty_blob_dir(blob_dir)
}

/// Refuses a blob folder holding blob files.
pub(super) fn check_empty_blob_dir(blob_dir: &Path) -> Result<()> {
    if blob_dir.exists() {
        for entry in fs::read_dir(blob_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let harmless = name == ".lock"
                || (name == "tmp"
                    && fs::read_dir(entry.path())
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false));
            if !harmless {
                return Err(StoreError::AlreadyExists(format!(
                    "blob folder {} is not empty; restore only into a fresh data folder",
                    blob_dir.display()
                )));
            }
        }
    }
    Ok(())
}

// ---- files ----

pub(super) fn blob_path(root: &Path, hash: &str) -> PathBuf {
    root.join(&hash[0..2]).join(&hash[2..4]).join(hash)
}

/// Copies `from` to `to` (not yet durable), checking that the content's SHA-256 is `hash`.
/// Returns the size.
pub(super) fn copy_blob(from: &Path, to: &Path, hash: &str) -> Result<u64> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let (bytes, got) = copy_hashed(from, to)?;
    if got != hash {
        let _ = fs::remove_file(to);
        return Err(StoreError::Invalid(format!(
            "blob {} is damaged: its content hashes to {got}",
            from.display()
        )));
    }
    Ok(bytes)
}

/// Copies `from` to a new file `to`, returning (size, hex SHA-256) of what was copied.
fn copy_hashed(from: &Path, to: &Path) -> Result<(u64, String)> {
    let mut src = File::open(from)?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        dst.write_all(chunk)?;
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

pub(super) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Makes the files just written under `root` (and their folders) durable: one `syncfs` on
/// Linux, a sync per file and folder elsewhere.
pub(super) fn sync_tree(root: &Path, files: &[PathBuf]) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = files;
        crate::blob::syncfs(root)?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut dirs = BTreeSet::new();
        for f in files {
            File::open(f)?.sync_all()?;
            if let Some(p) = f.parent() {
                dirs.insert(p.to_path_buf());
            }
        }
        for d in dirs {
            sync_dir(&d)?;
        }
        sync_dir(root)?;
    }
    Ok(())
}

/// Whether `dir` holds a manifest (a finished backup).
pub fn is_backup(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_db(dir: &Path) -> PathBuf {
        let db = dir.join("live.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE blobs (hash TEXT PRIMARY KEY, refcount INTEGER, pins INTEGER, \
               pinned_until INTEGER, generation INTEGER, deleting_since INTEGER); \
             INSERT INTO blobs VALUES ('a', 1, 0, 0, 7, NULL), ('b', 0, 0, 0, 8, NULL), \
               ('c', 2, 1, 5, 9, NULL), ('d', 1, 0, 0, 10, 123);",
        )
        .unwrap();
        db
    }

    fn pins(c: &Connection) -> Vec<(String, i64)> {
        let mut s = c
            .prepare("SELECT hash, pins FROM blobs ORDER BY hash")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn pins_referenced_blobs_at_the_snapshot_instant_and_releases_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = live_db(dir.path());
        let live = open_live(&db).unwrap();
        let reader = open_live(&db).unwrap();
        let pinned = pin_and_snapshot(&live, &reader).unwrap();
        // Referenced and not being removed: a and c, with the generations pinned.
        assert_eq!(pinned, vec![("a".to_string(), 7), ("c".to_string(), 9)]);
        // The live rows carry the pins (a collector would skip them)…
        let other = Connection::open(&db).unwrap();
        assert_eq!(
            pins(&other),
            [
                ("a".into(), 1),
                ("b".into(), 0),
                ("c".into(), 2),
                ("d".into(), 0)
            ]
        );
        let until: i64 = other
            .query_row("SELECT pinned_until FROM blobs WHERE hash = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(until > chrono::Utc::now().timestamp() + BACKUP_PIN_SECS - 60);
        // …while the snapshot is the state just before them.
        assert_eq!(
            pins(&reader),
            [
                ("a".into(), 0),
                ("b".into(), 0),
                ("c".into(), 1),
                ("d".into(), 0)
            ]
        );
        reader.execute_batch("COMMIT").unwrap();
        unpin(&live, &pinned).unwrap();
        assert_eq!(
            pins(&other),
            [
                ("a".into(), 0),
                ("b".into(), 0),
                ("c".into(), 1),
                ("d".into(), 0)
            ]
        );
    }

    #[test]
    fn store_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///x/data/wharf.db"),
            Some(PathBuf::from("/x/data/wharf.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://data/wharf.db?mode=rwc"),
            Some(PathBuf::from("data/wharf.db"))
        );
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
