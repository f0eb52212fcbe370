//! The life of a blob file, decided in the database so that it holds across processes and nodes
//! sharing one blob store (two nodes on PostgreSQL, or the server and `wharf import` on one
//! SQLite file): nothing in one process's memory can protect a file another process deletes.
//!
//! A `blobs` row says, for one content hash:
//! - `refcount`: the `messages` rows and queue entries naming it;
//! - `released_at`: since when it has had no reference (NULL while it has one);
//! - `pins` / `pinned_until`: writers that are about to rely on the file (their commit has not
//!   happened yet). `pinned_until` bounds a pin whose writer died; a live writer commits long
//!   before it (`PIN_TTL`);
//! - `generation`: new each time the row is made, so a commit can tell that the row it pinned
//!   is still the same one;
//! - `deleting_since`: set while a collector removes the file; nobody may pin it meanwhile.
//!
//! The rules:
//! 1. A writer pins every hash it is about to store **before** it looks at the file, and only
//!    then writes it (or finds it present and skips the write). The pin waits while a removal
//!    is under way.
//! 2. The commit that names a blob turns the pin into a reference, and fails if the row is no
//!    longer the generation it pinned (only possible past `PIN_TTL`).
//! 3. A collector claims a row (sets `deleting_since`) only when it has no reference, no live pin,
//!    and has been unreferenced for longer than the grace period; then removes the file; then
//!    the row. Claim and pin update the same row, so the database orders them: either the pin
//!    came first (no claim) or the claim did (the pin waits until the row is gone, and the writer
//!    then writes the file again).
//! 4. A file no row names is an orphan (a crash between blob write and pin commit, or an old
//!    version's leftover); the sweep claims it by inserting a row already marked deleting, so a
//!    writer arriving meanwhile waits for it in the same way.
//!
//! The grace period (`[store] blob_grace_secs`) also lets a session that has not yet seen an
//! expunge read the body it still announces.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Dialect, Durability, GC_CHUNK, Shared, Tx, db, now_secs};
use crate::{Result, StoreError};

/// How long a pin protects a blob whose writer never commits or unpins (it died). A write
/// commits within seconds; a commit later than this fails and is retried by its client.
pub(crate) const PIN_TTL_SECS: i64 = 3600;
/// How long a writer waits for a removal of the same bytes to finish before it gives up.
const PIN_WAIT: Duration = Duration::from_secs(10);
/// A removal claimed longer ago than this is taken over (its collector died mid-way).
const STALE_REMOVAL_SECS: i64 = 60;

/// The pins a writer holds: hash → the generation of the row it pinned.
pub(crate) type Pins = BTreeMap<String, i64>;

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn new_generation() -> i64 {
    // Only needs to differ from the generation of a row this hash had before.
    rand::random::<i64>()
}

impl Shared {
    /// Pins `blobs` (hash, size) before their files are looked at or written (rule 1). Hashes
    /// are pinned in ascending order, the order every transaction locks blob rows in. Waits up to
    /// `PIN_WAIT` while a collector removes one of them.
    pub async fn pin_blobs(&self, blobs: &[(String, i64)]) -> Result<Pins> {
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for (hash, size) in blobs {
            wanted.insert(hash.as_str(), *size);
        }
        let started = std::time::Instant::now();
        loop {
            let (pins, busy) = match self.dialect {
                Dialect::Postgres => self.pin_in_one_exchange(&wanted).await?,
                Dialect::Sqlite => self.pin_in_transaction(&wanted).await?,
            };
            let Some(busy) = busy else {
                return Ok(pins);
            };
            // Undo what this attempt pinned (PostgreSQL's exchange committed; SQLite's
            // transaction was rolled back and leaves none).
            if !pins.is_empty() {
                self.unpin_blobs(pins).await;
            }
            if started.elapsed() > PIN_WAIT {
                return Err(StoreError::Unavailable(format!(
                    "blob {busy} is being removed; try again"
                )));
            }
            tracing::debug!(
                hash = busy,
                "store: waiting for the removal of a blob to store it again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SQLite: the pins in one transaction, committed only when every hash was pinned; else
    /// rolled back, no pins and the hash a collector is removing.
    async fn pin_in_transaction<'a>(
        &self,
        wanted: &BTreeMap<&'a str, i64>,
    ) -> Result<(Pins, Option<&'a str>)> {
        // A pin need not survive a power cut: the commit that would rely on it is durable
        // after it, and a lost pin only loses a write that never committed.
        let mut tx = self.writer.begin_write(Durability::Relaxed).await?;
        let now = now_secs();
        let mut pins = Pins::new();
        for (hash, size) in wanted {
            let generation: Option<i64> = db::query_scalar(
                "INSERT INTO blobs (hash, size, refcount, released_at, pins, pinned_until, generation) \
                 VALUES ($1, $2, 0, $3, 1, $4, $5) \
                 ON CONFLICT (hash) DO UPDATE SET pins = blobs.pins + 1, \
                   pinned_until = CASE WHEN blobs.pinned_until > excluded.pinned_until \
                                  THEN blobs.pinned_until ELSE excluded.pinned_until END \
                 WHERE blobs.deleting_since IS NULL \
                 RETURNING generation",
            )
            .bind(*hash)
            .bind(*size)
            .bind(now)
            .bind(now + PIN_TTL_SECS)
            .bind(new_generation())
            .fetch_optional(&mut tx)
            .await?;
            match generation {
                Some(g) => {
                    pins.insert((*hash).to_string(), g);
                }
                // Dropping the transaction rolls the pins back.
                None => return Ok((Pins::new(), Some(*hash))),
            }
        }
        tx.commit().await?;
        Ok((pins, None))
    }

    /// PostgreSQL: `pin_blobs`' transaction (relaxed durability, one multi-row upsert in
    /// ascending hash order) sent as one simple query: one round trip instead of three per
    /// group commit. The statements of a simple query form one implicit transaction, which an
    /// error rolls back whole, leaving the connection clean (an explicit BEGIN inside would
    /// leave it in an aborted transaction). A simple query carries no parameters, so the values
    /// are written into it: hashes only after checking they are hex digits (they are SHA-256
    /// digests made here), everything else integers. Returns the pins taken and, if a collector is removing
    /// one of the blobs (no row came back for it), that hash.
    async fn pin_in_one_exchange<'a>(
        &self,
        wanted: &BTreeMap<&'a str, i64>,
    ) -> Result<(Pins, Option<&'a str>)> {
        let now = now_secs();
        let mut values = Vec::with_capacity(wanted.len());
        for (hash, size) in wanted {
            if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(StoreError::Backend(format!("not a blob hash: {hash:?}")));
            }
            values.push(format!(
                "('{hash}', {size}, 0, {now}, 1, {}, {})",
                now + PIN_TTL_SECS,
                new_generation()
            ));
        }
        let sql = format!(
            "SET LOCAL synchronous_commit = off; \
             INSERT INTO blobs (hash, size, refcount, released_at, pins, pinned_until, generation) \
             VALUES {} \
             ON CONFLICT (hash) DO UPDATE SET pins = blobs.pins + 1, \
               pinned_until = CASE WHEN blobs.pinned_until > excluded.pinned_until \
                              THEN blobs.pinned_until ELSE excluded.pinned_until END \
             WHERE blobs.deleting_since IS NULL \
             RETURNING hash, generation",
            values.join(", ")
        );
        let mut pins = Pins::new();
        for row in self.writer.simple_query(sql).await? {
            pins.insert(row.try_get("hash")?, row.try_get("generation")?);
        }
        let busy = wanted.keys().find(|h| !pins.contains_key(**h)).copied();
        Ok((pins, busy))
    }

    /// Inside the commit that names blobs: turns the pins into `refs` references (hash → how
    /// many rows name it) and releases the pins of hashes nothing ended up naming (rule 2).
    pub async fn settle_pins(
        &self,
        tx: &mut Tx,
        pins: &Pins,
        refs: &BTreeMap<String, i64>,
    ) -> Result<()> {
        for (hash, generation) in pins {
            let n = refs.get(hash).copied().unwrap_or(0);
            let done = db::query(
                "UPDATE blobs SET refcount = refcount + $1, \
                   released_at = CASE WHEN refcount + $1 > 0 THEN NULL ELSE released_at END, \
                   pins = CASE WHEN pins > 1 THEN pins - 1 ELSE 0 END \
                 WHERE hash = $2 AND generation = $3 AND deleting_since IS NULL",
            )
            .bind(n)
            .bind(hash.as_str())
            .bind(*generation)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Unavailable(format!(
                    "blob {hash} was collected while pinned (a write slower than {PIN_TTL_SECS} s); try again"
                )));
            }
        }
        if let Some(stray) = refs.keys().find(|h| !pins.contains_key(*h)) {
            return Err(StoreError::Backend(format!(
                "blob {stray} named without a pin"
            )));
        }
        Ok(())
    }

    /// Releases pins whose commit failed or never happened, then collects what they kept.
    pub async fn unpin_blobs(&self, pins: Pins) {
        let released = async {
            let mut tx = self.writer.begin_write(Durability::Relaxed).await?;
            self.settle_pins(&mut tx, &pins, &BTreeMap::new()).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "store: could not release blob pins (they expire on their own)");
            return;
        }
        if let Err(e) = self.collect_garbage(pins.into_keys().collect()).await {
            tracing::warn!(error = %e, "store: could not remove unused blobs (the sweep will)");
        }
    }

    /// Drops references to blobs, in hash order: blob rows are shared between accounts, and
    /// every transaction locking several of them does so in this order (no lock cycles).
    /// Returns the hashes left without any reference: `collect_garbage` them once the
    /// transaction has committed.
    pub async fn unref_blobs(
        &self,
        tx: &mut Tx,
        refs: BTreeMap<String, i64>,
    ) -> Result<Vec<String>> {
        let now = now_secs();
        let mut unreferenced = Vec::new();
        for (hash, n) in refs {
            let left: Option<i64> = db::query_scalar(
                "UPDATE blobs SET refcount = refcount - $1, \
                   released_at = CASE WHEN refcount - $1 <= 0 THEN $2 ELSE released_at END \
                 WHERE hash = $3 RETURNING refcount",
            )
            .bind(n)
            .bind(now)
            .bind(hash.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if left.is_some_and(|l| l <= 0) {
                unreferenced.push(hash);
            }
        }
        Ok(unreferenced)
    }

    /// Removes the files of `hashes` that are collectable now (rule 3). With a grace period, a
    /// hash just released is not yet: the periodic sweep takes it later.
    pub async fn collect_garbage(&self, hashes: Vec<String>) -> Result<u64> {
        if hashes.is_empty() || !self.blob_grace.is_zero() {
            return Ok(0);
        }
        let mut removed = 0;
        for chunk in hashes.chunks(GC_CHUNK) {
            removed += self.collect_chunk(chunk).await?;
        }
        Ok(removed)
    }

    /// Claims, removes and forgets the collectable ones among `hashes`.
    async fn collect_chunk(&self, hashes: &[String]) -> Result<u64> {
        let now = now_secs();
        let grace = i64::try_from(self.blob_grace.as_secs()).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE blobs SET deleting_since = $1 \
             WHERE refcount <= 0 AND deleting_since IS NULL AND released_at <= $2 \
               AND (pins <= 0 OR pinned_until < $1) AND hash IN ({}) \
             RETURNING hash",
            placeholders(3, hashes.len())
        );
        let mut q = db::query_scalar::<String>(sql)
            .bind(now)
            .bind(now.saturating_sub(grace));
        for h in hashes {
            q = q.bind(h.as_str());
        }
        let mut tx = self.writer.begin_write(Durability::Relaxed).await?;
        let claimed = q.fetch_all(&mut tx).await?;
        tx.commit().await?;
        self.remove_claimed(claimed).await
    }

    /// Removes the files of rows this collector claimed, then the rows.
    async fn remove_claimed(&self, claimed: Vec<String>) -> Result<u64> {
        if claimed.is_empty() {
            return Ok(0);
        }
        let blobs = self.blobs.clone();
        let (removed, failed) = tokio::task::spawn_blocking(move || {
            let mut removed = Vec::with_capacity(claimed.len());
            let mut rest = claimed.into_iter();
            for h in rest.by_ref() {
                match blobs.remove(&h) {
                    Ok(()) => removed.push(h),
                    Err(e) => {
                        let mut kept = vec![h];
                        kept.extend(rest);
                        return (removed, Some((kept, e)));
                    }
                }
            }
            (removed, None)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("blob removal task: {e}")))?;
        if !removed.is_empty() {
            let sql = format!(
                "DELETE FROM blobs WHERE deleting_since IS NOT NULL AND hash IN ({})",
                placeholders(1, removed.len())
            );
            let mut q = db::query(sql);
            for h in &removed {
                q = q.bind(h.as_str());
            }
            let mut tx = self.writer.begin_write(Durability::Relaxed).await?;
            q.execute(&mut tx).await?;
            tx.commit().await?;
        }
        let Some((kept, error)) = failed else {
            return Ok(removed.len() as u64);
        };
        // The store could not remove them (an S3 outage): give the claims back at once, so a
        // writer of the same bytes need not wait for the claim to go stale, and the next sweep
        // tries again. A writer that pins one now finds the file or writes it again (rule 1).
        let sql = format!(
            "UPDATE blobs SET deleting_since = NULL WHERE hash IN ({})",
            placeholders(1, kept.len())
        );
        let mut q = db::query(sql);
        for h in &kept {
            q = q.bind(h.as_str());
        }
        let mut tx = self.writer.begin_write(Durability::Relaxed).await?;
        q.execute(&mut tx).await?;
        tx.commit().await?;
        Err(StoreError::Io(error))
    }

    /// Files no row names, each at least `min_age` old (rule 4): claimed with a row marked
    /// deleting, then removed like any other.
    async fn collect_orphans(&self, listed: Vec<String>) -> Result<u64> {
        let mut removed = 0;
        for chunk in listed.chunks(GC_CHUNK) {
            let now = now_secs();
            let mut claimed = Vec::new();
            let mut tx = self.writer.begin_write(Durability::Relaxed).await?;
            for h in chunk {
                let inserted: Option<String> = db::query_scalar(
                    "INSERT INTO blobs (hash, size, refcount, released_at, pins, pinned_until, generation, deleting_since) \
                     VALUES ($1, 0, 0, $2, 0, 0, $3, $2) ON CONFLICT (hash) DO NOTHING RETURNING hash",
                )
                .bind(h.as_str())
                .bind(now)
                .bind(new_generation())
                .fetch_optional(&mut tx)
                .await?;
                claimed.extend(inserted);
            }
            tx.commit().await?;
            removed += self.remove_claimed(claimed).await?;
        }
        Ok(removed)
    }

    /// Everything the periodic sweep collects: unfinished writes and orphan files older than
    /// `min_age`, blobs unreferenced past the grace period (and unpinned), and removals whose
    /// collector died.
    pub async fn sweep(&self, min_age: Duration) -> Result<u64> {
        let blobs = self.blobs.clone();
        let (listed, tmp_removed) =
            tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<String>, u64)> {
                let tmp = blobs.sweep_tmp(min_age)?;
                Ok((blobs.list(min_age)?, tmp))
            })
            .await
            .map_err(|e| StoreError::Backend(format!("sweep task: {e}")))??;
        let mut removed = tmp_removed;
        // Which listed files no row names.
        let mut orphans = Vec::new();
        for chunk in listed.chunks(GC_CHUNK) {
            let sql = format!(
                "SELECT hash FROM blobs WHERE hash IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = db::query_scalar::<String>(sql);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            let known: std::collections::HashSet<String> =
                q.fetch_all(&self.reader).await?.into_iter().collect();
            orphans.extend(chunk.iter().filter(|h| !known.contains(*h)).cloned());
        }
        removed += self.collect_orphans(orphans).await?;
        // Unreferenced past the grace period, a chunk at a time until none is left.
        let grace = i64::try_from(self.blob_grace.as_secs()).unwrap_or(i64::MAX);
        // Released messages are readable for as long as their bodies stay.
        db::query("DELETE FROM released_messages WHERE released_at < $1")
            .bind(now_secs().saturating_sub(grace))
            .execute(&self.writer)
            .await?;
        loop {
            let now = now_secs();
            let due: Vec<String> = db::query_scalar(
                "SELECT hash FROM blobs WHERE refcount <= 0 AND deleting_since IS NULL \
                   AND released_at <= $1 AND (pins <= 0 OR pinned_until < $2) \
                 ORDER BY hash LIMIT $3",
            )
            .bind(now.saturating_sub(grace))
            .bind(now)
            .bind(GC_CHUNK as i64)
            .fetch_all(&self.reader)
            .await?;
            if due.is_empty() {
                break;
            }
            let n = self.collect_chunk(&due).await?;
            removed += n;
            if n == 0 {
                // All taken by another collector or pinned meanwhile.
                break;
            }
        }
        // Removals whose collector died between claim and row deletion.
        let stale: Vec<String> = db::query_scalar(
            "SELECT hash FROM blobs WHERE deleting_since IS NOT NULL AND deleting_since < $1 LIMIT $2",
        )
        .bind(now_secs() - STALE_REMOVAL_SECS)
        .bind(GC_CHUNK as i64)
        .fetch_all(&self.reader)
        .await?;
        removed += self.remove_claimed(stale).await?;
        Ok(removed)
    }

    /// The sweep `open` runs when this process is alone with the blob store: nothing can be in
    /// flight, so every unreferenced file is a crash leftover. A process opening the store beside
    /// others (a CLI command next to the server, a second node) leaves the files alone: the one
    /// that started first swept them, and `sweep_orphans` is there for periodic runs.
    pub async fn startup_sweep(&self) -> Result<u64> {
        let alone = self.blobs.try_lock_alone()?;
        let swept = if alone {
            self.sweep(Duration::ZERO).await
        } else {
            Ok(0)
        };
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || blobs.join_shared(alone))
            .await
            .map_err(|e| StoreError::Backend(format!("lock task: {e}")))??;
        swept
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sql::SqlStore;
    use crate::{PgTimeouts, StoreConfig};

    struct Opened {
        store: SqlStore,
        _dir: tempfile::TempDir,
        _pg: Option<wharf_testkit::TempDatabase>,
        _garage: Option<wharf_testkit::Garage>,
    }

    /// Where the test's store lives: SQLite or PostgreSQL metadata, bodies in a folder or in
    /// an S3 bucket (a private Garage).
    #[derive(Clone, Copy, PartialEq)]
    enum Backend {
        Sqlite,
        Postgres,
        PostgresS3,
    }

    async fn open(backend: Backend, grace: Duration) -> Opened {
        let dir = tempfile::tempdir().unwrap();
        let pg = (backend != Backend::Sqlite)
            .then(|| wharf_testkit::TempDatabase::create("wharf_blob_life"));
        let garage = (backend == Backend::PostgresS3).then(wharf_testkit::Garage::start_new);
        let url = match &pg {
            Some(db) => db.url(),
            None => format!("sqlite://{}", dir.path().join("wharf.db").display()),
        };
        let cfg = StoreConfig {
            url,
            blob_dir: dir.path().join("blobs"),
            // The test kit links its own copy of this crate: the same fields, another type.
            blob_s3: garage.as_ref().map(|g| {
                let c = g.s3_config("blob-life");
                crate::blob_s3::S3Config {
                    bucket: c.bucket,
                    prefix: c.prefix,
                    endpoint: c.endpoint,
                    region: c.region,
                    path_style: c.path_style,
                    access_key_id: c.access_key_id,
                    secret_access_key: c.secret_access_key,
                    timeout: c.timeout,
                    retry: c.retry,
                }
            }),
            blob_grace: grace,
        };
        Opened {
            store: SqlStore::connect(&cfg, PgTimeouts::default())
                .await
                .unwrap(),
            _dir: dir,
            _pg: pg,
            _garage: garage,
        }
    }

    impl Opened {
        fn shared(&self) -> &Shared {
            &self.store.shared
        }

        fn exists(&self, hash: &str) -> bool {
            self.shared().blobs.size_of(hash).unwrap().is_some()
        }

        /// What a writer does before its commit: pin, then write the file.
        async fn pin_and_write(&self, body: &'static [u8]) -> (String, Pins) {
            let hash = crate::blob::blob_hash(body);
            let pins = self
                .shared()
                .pin_blobs(&[(hash.clone(), body.len() as i64)])
                .await
                .unwrap();
            self.shared().blobs.put_durable(&[(&hash, body)]).unwrap();
            (hash, pins)
        }

        async fn commit_refs(&self, pins: &Pins, refs: &[(&str, i64)]) -> Result<()> {
            let refs = refs.iter().map(|(h, n)| (h.to_string(), *n)).collect();
            let mut tx = self.shared().begin_write().await?;
            self.shared().settle_pins(&mut tx, pins, &refs).await?;
            tx.commit().await
        }

        async fn release(&self, hash: &str) -> Vec<String> {
            let mut tx = self.shared().begin_write().await.unwrap();
            let gone = self
                .shared()
                .unref_blobs(&mut tx, BTreeMap::from([(hash.to_string(), 1)]))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            gone
        }

        async fn exec(&self, sql: &'static str, hash: &str) {
            let mut tx = self.shared().begin_write().await.unwrap();
            db::query(sql).bind(hash).execute(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
        }
    }

    async fn a_pinned_blob_is_never_collected(backend: Backend) {
        let t = open(backend, Duration::ZERO).await;
        let (hash, pins) = t.pin_and_write(b"pinned body").await;
        // Unreferenced, grace zero, but a writer is about to commit it.
        assert_eq!(
            t.shared()
                .collect_garbage(vec![hash.clone()])
                .await
                .unwrap(),
            0
        );
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 0);
        assert!(t.exists(&hash));
        // The writer gives up: the pin goes and so does the file.
        t.shared().unpin_blobs(pins).await;
        assert!(!t.exists(&hash));
    }

    async fn a_pin_waits_for_a_removal_under_way(backend: Backend) {
        let t = Arc::new(open(backend, Duration::ZERO).await);
        let (hash, pins) = t.pin_and_write(b"being removed").await;
        t.commit_refs(&pins, &[]).await.unwrap();
        // A collector (another node) has claimed the row and is about to remove the file.
        t.exec("UPDATE blobs SET deleting_since = 1 WHERE hash = $1", &hash)
            .await;
        let writer = {
            let t = t.clone();
            tokio::spawn(async move { t.pin_and_write(b"being removed").await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writer.is_finished(), "a pin must wait for the removal");
        assert_eq!(
            t.shared().remove_claimed(vec![hash.clone()]).await.unwrap(),
            1
        );
        let (again, new_pins) = writer.await.unwrap();
        assert_eq!(again, hash);
        assert_ne!(new_pins[&hash], pins[&hash], "a new row, a new generation");
        // The writer wrote the file after the removal, so its commit names a file that exists.
        assert!(t.exists(&hash));
        t.commit_refs(&new_pins, &[(&hash, 1)]).await.unwrap();
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 0);
        assert!(t.exists(&hash));
    }

    async fn a_dead_writers_pin_expires(backend: Backend) {
        let t = open(backend, Duration::ZERO).await;
        let (hash, pins) = t.pin_and_write(b"writer died").await;
        // Its writer died an hour ago: the pin's time is up.
        t.exec("UPDATE blobs SET pinned_until = 0 WHERE hash = $1", &hash)
            .await;
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 1);
        assert!(!t.exists(&hash));
        // Had it come back after all, its commit is refused rather than naming a missing file.
        let late = t.commit_refs(&pins, &[(&hash, 1)]).await;
        assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    }

    async fn the_grace_period_keeps_a_released_body(backend: Backend) {
        let t = open(backend, Duration::from_secs(1)).await;
        let (hash, pins) = t.pin_and_write(b"expunged a moment ago").await;
        t.commit_refs(&pins, &[(&hash, 1)]).await.unwrap();
        let gone = t.release(&hash).await;
        assert_eq!(gone, vec![hash.clone()]);
        assert_eq!(t.shared().collect_garbage(gone).await.unwrap(), 0);
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 0);
        assert!(t.exists(&hash), "within the grace period");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 1);
        assert!(!t.exists(&hash), "past the grace period");
    }

    async fn a_referenced_blob_survives_every_sweep(backend: Backend) {
        let t = open(backend, Duration::ZERO).await;
        let (hash, pins) = t.pin_and_write(b"still in a mailbox").await;
        t.commit_refs(&pins, &[(&hash, 2)]).await.unwrap();
        assert!(t.release(&hash).await.is_empty(), "one reference left");
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 0);
        assert!(t.exists(&hash));
        // An orphan beside it (no row at all) goes.
        let orphan = crate::blob::blob_hash(b"orphan");
        t.shared()
            .blobs
            .put_durable(&[(&orphan, b"orphan")])
            .unwrap();
        assert_eq!(t.shared().sweep(Duration::ZERO).await.unwrap(), 1);
        assert!(!t.exists(&orphan));
        assert!(t.exists(&hash));
    }

    macro_rules! both {
        ($($name:ident),*) => {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() { super::$name(super::Backend::Sqlite).await }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() { super::$name(super::Backend::Postgres).await }
                )*
            }
            mod postgres_s3 {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() { super::$name(super::Backend::PostgresS3).await }
                )*
            }
        };
    }

    both!(
        a_pinned_blob_is_never_collected,
        a_pin_waits_for_a_removal_under_way,
        a_dead_writers_pin_expires,
        the_grace_period_keeps_a_released_body,
        a_referenced_blob_survives_every_sweep
    );

    use std::sync::Arc;
}
