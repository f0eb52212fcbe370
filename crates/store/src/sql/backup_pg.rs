//! `wharf backup`/`wharf restore` for the PostgreSQL backend: the same guarantee as the SQLite
//! path (backup.rs), with PostgreSQL's own tools.
//!
//! Backup: one transaction pins every referenced blob while a second, REPEATABLE READ, exports
//! its snapshot before the pins commit, so snapshot and pins describe one instant; `pg_dump
//! --format=custom --snapshot` dumps exactly that snapshot; the bodies the snapshot names are
//! copied, each checked against its hash; the pins are released; the manifest comes last.
//! Restore: into an empty database (no tables) and an empty blob folder; the dump's SHA-256 is
//! checked against the manifest, `pg_restore` loads it, the bodies are copied and checked, and
//! per-process state in the dump (pins, nodes, POP3 locks, queue leases) is cleared.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use sqlx::{Connection, PgConnection, Row};

use super::backup::{
    BACKUP_PIN_SECS, BLOB_DIR, Counts, DatabaseFile, FORMAT_VERSION, MANIFEST_FILE, Manifest,
    PG_DUMP_FILE, blob_path, check_empty_blob_dir, copy_blob, hash_file, prepare_target,
    read_manifest, sync_tree,
};
use crate::blob::{sync_dir, valid_hash};
use crate::{Result, StoreConfig, StoreError};

fn pg_err(e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

/// Runs `program` with `args`; its stderr in the error.
async fn run_tool(program: &str, args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| {
            StoreError::Backend(format!(
                "cannot run {program} (install PostgreSQL's client tools): {e}"
            ))
        })?;
    if !out.status.success() {
        return Err(StoreError::Backend(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub(crate) async fn backup(cfg: &StoreConfig, dir: &Path, version: &str) -> Result<Manifest> {
    prepare_target(dir)?;
    let mut pinner = PgConnection::connect(&cfg.url).await.map_err(pg_err)?;
    let mut reader = PgConnection::connect(&cfg.url).await.map_err(pg_err)?;
    let until = chrono::Utc::now().timestamp() + BACKUP_PIN_SECS;

    sqlx::query("BEGIN")
        .execute(&mut pinner)
        .await
        .map_err(pg_err)?;
    let pinned: Vec<(String, i64)> = sqlx::query(
        "UPDATE blobs SET pins = pins + 1, pinned_until = GREATEST(pinned_until, $1) \
         WHERE refcount > 0 AND deleting_since IS NULL RETURNING hash, generation",
    )
    .bind(until)
    .fetch_all(&mut pinner)
    .await
    .map_err(pg_err)?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<std::result::Result<_, sqlx::Error>>()
    .map_err(pg_err)?;
    // The snapshot is taken while the pins are not yet committed: it shows the rows as they
    // were, and every body it names is pinned from the commit on.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut reader)
        .await
        .map_err(pg_err)?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut reader)
        .await
        .map_err(pg_err)?;
    sqlx::query("COMMIT")
        .execute(&mut pinner)
        .await
        .map_err(pg_err)?;

    let result = dump_and_copy(cfg, dir, version, &mut reader, &snapshot).await;
    let _ = sqlx::query("COMMIT").execute(&mut reader).await;
    let unpinned = unpin(&mut pinner, &pinned).await;
    let manifest = result?;
    if let Err(e) = unpinned {
        tracing::warn!(error = %e, "backup: could not release the blob pins (they expire in {BACKUP_PIN_SECS} s)");
    }
    Ok(manifest)
}

async fn dump_and_copy(
    cfg: &StoreConfig,
    dir: &Path,
    version: &str,
    reader: &mut PgConnection,
    snapshot: &str,
) -> Result<Manifest> {
    let created_at = chrono::Utc::now().timestamp();
    let tmp = dir.join(format!("{PG_DUMP_FILE}.partial"));
    let (tmp_s, snap_arg) = (
        tmp.to_string_lossy().into_owned(),
        format!("--snapshot={snapshot}"),
    );
    run_tool(
        "pg_dump",
        &[
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            &snap_arg,
            "--file",
            &tmp_s,
            "--dbname",
            &cfg.url,
        ],
    )
    .await?;
    fs::File::open(&tmp)?.sync_all()?;
    let final_dump = dir.join(PG_DUMP_FILE);
    fs::rename(&tmp, &final_dump)?;

    let needed: BTreeSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT blob_hash FROM messages UNION SELECT blob_hash FROM queue",
    )
    .fetch_all(&mut *reader)
    .await
    .map_err(pg_err)?
    .into_iter()
    .collect();
    if let Some(bad) = needed.iter().find(|h| !valid_hash(h)) {
        return Err(StoreError::Backend(format!(
            "invalid blob name {bad:?} in the database"
        )));
    }
    let counts = count_rows(reader).await?;
    let blob_out = dir.join(BLOB_DIR);
    fs::create_dir_all(&blob_out)?;
    let mut blob_bytes = 0u64;
    let mut written = Vec::new();
    for hash in &needed {
        let to = blob_path(&blob_out, hash);
        blob_bytes += copy_blob(&blob_path(&cfg.blob_dir, hash), &to, hash)?;
        written.push(to);
    }
    sync_tree(&blob_out, &written)?;
    let (bytes, sha256) = hash_file(&final_dump)?;
    let manifest = Manifest {
        format: FORMAT_VERSION,
        wharf_version: version.to_string(),
        backend: "postgres".into(),
        created_at,
        database: DatabaseFile {
            file: PG_DUMP_FILE.into(),
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
    fs::write(&tmp_manifest, format!("{text}\n"))?;
    fs::File::open(&tmp_manifest)?.sync_all()?;
    fs::rename(&tmp_manifest, dir.join(MANIFEST_FILE))?;
    sync_dir(dir)?;
    Ok(manifest)
}

async fn count_rows(conn: &mut PgConnection) -> Result<Counts> {
    let mut c = Counts::default();
    for (table, slot) in [
        ("domains", &mut c.domains),
        ("accounts", &mut c.accounts),
        ("mailboxes", &mut c.mailboxes),
        ("messages", &mut c.messages),
        ("queue", &mut c.queue),
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await
                .map_err(pg_err)?;
        *slot = u64::try_from(n).unwrap_or(0);
    }
    Ok(c)
}

async fn unpin(conn: &mut PgConnection, pinned: &[(String, i64)]) -> Result<()> {
    for chunk in pinned.chunks(500) {
        let mut tx = conn.begin().await.map_err(pg_err)?;
        for (hash, generation) in chunk {
            sqlx::query(
                "UPDATE blobs SET pins = GREATEST(pins - 1, 0) \
                 WHERE hash = $1 AND generation = $2 AND deleting_since IS NULL",
            )
            .bind(hash)
            .bind(generation)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
    }
    Ok(())
}

pub(crate) async fn restore(cfg: &StoreConfig, dir: &Path) -> Result<Manifest> {
    let manifest = read_manifest(dir)?;
    if manifest.backend != "postgres" {
        return Err(StoreError::Invalid(format!(
            "{} is a backup of the {} store; the configured store is PostgreSQL \
             (wharf migrate moves an embedded store to PostgreSQL)",
            dir.display(),
            manifest.backend
        )));
    }
    let mut conn = PgConnection::connect(&cfg.url).await.map_err(pg_err)?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(pg_err)?;
    if tables > 0 {
        return Err(StoreError::AlreadyExists(
            "the configured PostgreSQL database is not empty; restore only into a new database"
                .into(),
        ));
    }
    check_empty_blob_dir(&cfg.blob_dir)?;
    let dump = dir.join(PG_DUMP_FILE);
    let (bytes, sha256) = hash_file(&dump)?;
    if bytes != manifest.database.bytes || sha256 != manifest.database.sha256 {
        return Err(StoreError::Invalid(format!(
            "{} does not match the manifest: the backup is damaged or was changed",
            dump.display()
        )));
    }
    // Bodies first: the database appears only once everything it names is in place.
    let blob_in = dir.join(BLOB_DIR);
    fs::create_dir_all(&cfg.blob_dir)?;
    let mut written = Vec::new();
    let mut names = Vec::new();
    for entry in walk(&blob_in)? {
        let Some(hash) = entry
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !valid_hash(&hash) {
            continue;
        }
        let to = blob_path(&cfg.blob_dir, &hash);
        copy_blob(&entry, &to, &hash)?;
        written.push(to);
        names.push(hash);
    }
    if names.len() as u64 != manifest.counts.blobs {
        return Err(StoreError::Invalid(format!(
            "the backup holds {} blobs, its manifest {}",
            names.len(),
            manifest.counts.blobs
        )));
    }
    sync_tree(&cfg.blob_dir, &written)?;
    let dump_s = dump.to_string_lossy().into_owned();
    run_tool(
        "pg_restore",
        &[
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            &cfg.url,
            &dump_s,
        ],
    )
    .await?;
    // What belonged to the processes of the backed-up cluster.
    sqlx::query("UPDATE blobs SET pins = 0, pinned_until = 0 WHERE pins <> 0 OR pinned_until <> 0")
        .execute(&mut conn)
        .await
        .map_err(pg_err)?;
    for sql in [
        "DELETE FROM nodes",
        "DELETE FROM maildrop_locks",
        "UPDATE queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
    ] {
        sqlx::query(sql).execute(&mut conn).await.map_err(pg_err)?;
    }
    let missing: Vec<String> = sqlx::query_scalar::<_, String>(
        "SELECT blob_hash FROM messages UNION SELECT blob_hash FROM queue",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(pg_err)?
    .into_iter()
    .filter(|h| !names.contains(h))
    .collect();
    if let Some(h) = missing.first() {
        return Err(StoreError::Invalid(format!(
            "the restored database names blob {h}, which the backup lacks ({} in all)",
            missing.len()
        )));
    }
    Ok(manifest)
}

/// Every file under `root`.
fn walk(root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !d.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    Ok(out)
}
