//! Blob stores: the `BlobStore` contract the SQL store writes message bodies through, and its
//! filesystem backend: content-addressed (SHA-256) message bodies under
//! `root/ab/cd/<hash>`, written once through `root/tmp`, made durable before any row names them.
//!
//! This module owns only the files. Reference counts live in the database, and the decision to
//! delete a file (no row names it, no write of it is in flight) is taken by the SQL store, which
//! then calls `remove`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A blob's bytes, read as they are consumed (see `BlobStore::open_read`).
pub type BlobReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// The most a streaming blob reader holds in memory at once.
pub const STREAM_BUFFER: usize = 64 * 1024;

/// What `open_read` found: a rest small enough to hand over read, or the open file.
enum Opened {
    Whole(u64, Vec<u8>),
    File(u64, File),
}

/// How a batch of new blobs is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Each file: write, fsync, rename, fsync its directory. Four synchronous steps per message.
    PerFile,
    /// Write every temp file, one `syncfs`, rename every file, one more `syncfs` (which also
    /// covers the new directory entries). Two flushes per batch, whatever its size. Falls back to
    /// `PerFile` where `syncfs` does not exist.
    Batch,
}

/// Hex SHA-256 of a message: its blob name.
pub fn blob_hash(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

pub(crate) fn valid_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Every process with the store open holds a shared lock on `root/.lock`; a process that finds
/// itself alone (exclusive lock granted) knows no other writer exists and may sweep without a grace
/// period (see `exclusive_sweep`).
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
    tmp: PathBuf,
    mode: SyncMode,
    lock: File,
}

impl FsBlobStore {
    /// Creates `root` and `root/tmp` when missing.
    pub fn open(root: &Path, mode: SyncMode) -> io::Result<FsBlobStore> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(".lock"))?;
        Ok(FsBlobStore {
            root: root.to_path_buf(),
            tmp,
            mode,
            lock,
        })
    }

    /// Takes the exclusive lock if no other process has the blob store open. While it is held,
    /// nothing can be in flight anywhere, so an immediate sweep is safe. Follow with `join_shared`.
    pub fn try_lock_alone(&self) -> io::Result<bool> {
        match self.lock.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Joins the other users with a shared lock, held until this store is dropped; waits only
    /// while another process runs its exclusive sweep. Blocking.
    pub fn join_shared(&self, was_alone: bool) -> io::Result<()> {
        if was_alone {
            self.lock.unlock()?;
        }
        self.lock.lock_shared()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob named `hash` lives (the name must be a valid hash).
    pub fn path_of(&self, hash: &str) -> PathBuf {
        self.root.join(&hash[0..2]).join(&hash[2..4]).join(hash)
    }

    pub fn exists(&self, hash: &str) -> bool {
        valid_hash(hash) && self.path_of(hash).is_file()
    }

    pub async fn read(&self, hash: &str) -> io::Result<Bytes> {
        if !valid_hash(hash) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid blob name",
            ));
        }
        Ok(Bytes::from(tokio::fs::read(self.path_of(hash)).await?))
    }

    /// The blob's length and a reader of the file from `start` on. Memory stays at one read
    /// buffer (`STREAM_BUFFER`) whatever the blob's size: the reader fills it only as fast as
    /// its consumer drains it (a slow client's socket holds the read back).
    pub async fn open_read(&self, hash: &str, start: u64) -> io::Result<(u64, BlobReader)> {
        use tokio::io::AsyncSeekExt;
        if !valid_hash(hash) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid blob name",
            ));
        }
        let path = self.path_of(hash);
        // Open, size and (for a small rest) read on one blocking thread: each step on its own
        // would be a blocking-pool round trip, which for the many small messages of a POP3
        // download costs more than the reading (measured: POP3 RETR -15 % with per-step calls).
        let opened = tokio::task::spawn_blocking(move || -> io::Result<Opened> {
            use std::io::{Read as _, Seek as _};
            let mut file = File::open(path)?;
            let len = file.metadata()?.len();
            let from = start.min(len);
            if len - from <= STREAM_BUFFER as u64 {
                if from > 0 {
                    file.seek(io::SeekFrom::Start(from))?;
                }
                let mut rest = Vec::with_capacity((len - from) as usize);
                file.read_to_end(&mut rest)?;
                return Ok(Opened::Whole(len, rest));
            }
            Ok(Opened::File(len, file))
        })
        .await
        .map_err(io::Error::other)??;
        match opened {
            Opened::Whole(len, rest) => Ok((len, Box::new(io::Cursor::new(rest)))),
            Opened::File(len, file) => {
                let mut file = tokio::fs::File::from_std(file);
                if start > 0 {
                    file.seek(io::SeekFrom::Start(start.min(len))).await?;
                }
                file.set_max_buf_size(STREAM_BUFFER);
                Ok((len, Box::new(file)))
            }
        }
    }

    /// Reads several blobs on one blocking thread: a FETCH of many small messages would otherwise
    /// pay a blocking-pool round trip per file, which costs more than the read itself.
    pub async fn read_many(&self, hashes: &[String]) -> io::Result<Vec<io::Result<Bytes>>> {
        let paths: Vec<Option<PathBuf>> = hashes
            .iter()
            .map(|h| valid_hash(h).then(|| self.path_of(h)))
            .collect();
        tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .map(|p| match p {
                    Some(p) => fs::read(p).map(Bytes::from),
                    None => Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "invalid blob name",
                    )),
                })
                .collect()
        })
        .await
        .map_err(io::Error::other)
    }

    /// Stores every blob not already present and returns only when all of them are durable.
    /// Blocking: run it on a blocking thread.
    pub fn put_durable(&self, items: &[(&str, &[u8])]) -> io::Result<()> {
        let mut seen = HashSet::new();
        let todo: Vec<(&str, &[u8])> = items
            .iter()
            .copied()
            .filter(|(h, _)| seen.insert(*h))
            .filter(|(h, _)| !self.exists(h))
            .collect();
        for (h, _) in &todo {
            if !valid_hash(h) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "invalid blob name",
                ));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        if self.mode == SyncMode::Batch {
            return self.put_batch(&todo);
        }
        for (h, data) in todo {
            self.put_one(h, data)?;
        }
        Ok(())
    }

    fn temp_path(&self, hash: &str) -> PathBuf {
        self.tmp
            .join(format!("{hash}.{:016x}", rand::random::<u64>()))
    }

    /// Creates `ab/cd` for the hash; returns the directories that did not exist before.
    fn ensure_dirs(&self, hash: &str) -> io::Result<Vec<PathBuf>> {
        let outer = self.root.join(&hash[0..2]);
        let inner = outer.join(&hash[2..4]);
        let mut created = Vec::new();
        if !outer.is_dir() {
            fs::create_dir_all(&outer)?;
            created.push(self.root.clone());
        }
        if !inner.is_dir() {
            fs::create_dir_all(&inner)?;
            created.push(outer);
        }
        Ok(created)
    }

    fn put_one(&self, hash: &str, data: &[u8]) -> io::Result<()> {
        let tmp = self.temp_path(hash);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            let parents = self.ensure_dirs(hash)?;
            let dst = self.path_of(hash);
            fs::rename(&tmp, &dst)?;
            for dir in parents {
                sync_dir(&dir)?;
            }
            if let Some(dir) = dst.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    #[cfg(target_os = "linux")]
    fn put_batch(&self, todo: &[(&str, &[u8])]) -> io::Result<()> {
        let mut temps: Vec<(PathBuf, &str)> = Vec::with_capacity(todo.len());
        let result = (|| {
            for (h, data) in todo {
                let tmp = self.temp_path(h);
                temps.push((tmp.clone(), h));
                let mut f = File::create(&tmp)?;
                f.write_all(data)?;
            }
            syncfs(&self.tmp)?;
            for (tmp, h) in &temps {
                self.ensure_dirs(h)?;
                fs::rename(tmp, self.path_of(h))?;
            }
            syncfs(&self.root)
        })();
        if result.is_err() {
            for (tmp, _) in &temps {
                let _ = fs::remove_file(tmp);
            }
        }
        result
    }

    /// Deletes a blob file; a missing file is not an error. The caller has established that no
    /// row names it and no write of it is in flight.
    pub fn remove(&self, hash: &str) -> io::Result<()> {
        if !valid_hash(hash) {
            return Ok(());
        }
        match fs::remove_file(self.path_of(hash)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every stored blob name whose file is at least `min_age` old.
    pub fn list(&self, min_age: Duration) -> io::Result<Vec<String>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for outer in fs::read_dir(&self.root)? {
            let outer = outer?;
            let name = outer.file_name();
            let name = name.to_string_lossy();
            if name.len() != 2 || !outer.file_type()?.is_dir() {
                continue;
            }
            for inner in fs::read_dir(outer.path())? {
                let inner = inner?;
                if !inner.file_type()?.is_dir() {
                    continue;
                }
                for file in fs::read_dir(inner.path())? {
                    let file = file?;
                    let fname = file.file_name().to_string_lossy().into_owned();
                    if valid_hash(&fname) && old_enough(&file, now, min_age) {
                        out.push(fname);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes temp files older than `min_age` (zero: all of them, only safe while no write runs).
    pub fn sweep_tmp(&self, min_age: Duration) -> io::Result<u64> {
        let mut removed = 0;
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if old_enough(&entry, now, min_age) && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn old_enough(entry: &fs::DirEntry, now: SystemTime, min_age: Duration) -> bool {
    min_age.is_zero()
        || entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() >= min_age)
            .unwrap_or(false)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "syncfs(2) has no safe wrapper; see SAFETY")]
pub(crate) fn syncfs(on: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(on)?;
    // SAFETY: `syncfs` only reads the descriptor number, which `f` keeps open for the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where message bodies live: content-addressed, written once, made durable before any row names
/// them. Reference counts live in the database; a backend only stores, reads and removes what it
/// is told to. The filesystem store is the embedded default; the S3 store (`blob_s3`) for
/// scale-out implements the same contract.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores every blob not already present; returns only when all of them are durable. Blocking.
    fn put_durable(&self, items: &[(&str, &[u8])]) -> io::Result<()>;
    async fn read(&self, hash: &str) -> io::Result<Bytes>;
    /// Several blobs, in the order asked, each with its own result; the outer error is for the
    /// batch as a whole. The default reads them one by one; a backend with a cheaper batch path
    /// (one blocking-pool hop, one request) overrides it.
    async fn read_many(&self, hashes: &[String]) -> io::Result<Vec<io::Result<Bytes>>> {
        let mut out = Vec::with_capacity(hashes.len());
        for h in hashes {
            out.push(self.read(h).await);
        }
        Ok(out)
    }
    /// The blob's whole length and a reader of its bytes from `start` on (past the end: an
    /// empty reader), without holding the blob in memory where the backend can avoid it. The
    /// default reads the whole blob; the filesystem backend streams the file.
    async fn open_read(&self, hash: &str, start: u64) -> io::Result<(u64, BlobReader)> {
        let all = self.read(hash).await?;
        let len = all.len() as u64;
        let from = usize::try_from(start.min(len)).unwrap_or(all.len());
        Ok((len, Box::new(io::Cursor::new(all.slice(from..)))))
    }
    /// Removes one blob (absent is not an error). Blocking.
    fn remove(&self, hash: &str) -> io::Result<()>;
    /// Names of stored blobs older than `min_age` (candidates for the orphan sweep). Blocking.
    fn list(&self, min_age: Duration) -> io::Result<Vec<String>>;
    /// Removes unfinished writes older than `min_age`; returns how many. Blocking.
    fn sweep_tmp(&self, min_age: Duration) -> io::Result<u64>;
    /// True when no other process uses this blob store, so nothing can be in flight elsewhere and
    /// an immediate sweep is safe. Follow with `join_shared`. Blocking.
    fn try_lock_alone(&self) -> io::Result<bool>;
    /// Registers this process as one of the store's users until it is dropped. Blocking.
    fn join_shared(&self, was_alone: bool) -> io::Result<()>;
    /// The stored blob's size, or None when it is absent. Blocking.
    fn size_of(&self, hash: &str) -> io::Result<Option<u64>>;
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    fn put_durable(&self, items: &[(&str, &[u8])]) -> io::Result<()> {
        FsBlobStore::put_durable(self, items)
    }
    async fn read(&self, hash: &str) -> io::Result<Bytes> {
        FsBlobStore::read(self, hash).await
    }
    async fn read_many(&self, hashes: &[String]) -> io::Result<Vec<io::Result<Bytes>>> {
        FsBlobStore::read_many(self, hashes).await
    }
    async fn open_read(&self, hash: &str, start: u64) -> io::Result<(u64, BlobReader)> {
        FsBlobStore::open_read(self, hash, start).await
    }
    fn remove(&self, hash: &str) -> io::Result<()> {
        FsBlobStore::remove(self, hash)
    }
    fn list(&self, min_age: Duration) -> io::Result<Vec<String>> {
        FsBlobStore::list(self, min_age)
    }
    fn sweep_tmp(&self, min_age: Duration) -> io::Result<u64> {
        FsBlobStore::sweep_tmp(self, min_age)
    }
    fn try_lock_alone(&self) -> io::Result<bool> {
        FsBlobStore::try_lock_alone(self)
    }
    fn join_shared(&self, was_alone: bool) -> io::Result<()> {
        FsBlobStore::join_shared(self, was_alone)
    }
    fn size_of(&self, hash: &str) -> io::Result<Option<u64>> {
        if !valid_hash(hash) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid blob name",
            ));
        }
        match fs::metadata(self.path_of(hash)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_modes_store_and_list() {
        for mode in [SyncMode::PerFile, SyncMode::Batch] {
            let dir = tempfile::tempdir().unwrap();
            let store = FsBlobStore::open(dir.path(), mode).unwrap();
            let a = b"hello".to_vec();
            let b = b"world".to_vec();
            let (ha, hb) = (blob_hash(&a), blob_hash(&b));
            store
                .put_durable(&[(&ha, &a), (&hb, &b), (&ha, &a)])
                .unwrap();
            let mut listed = store.list(Duration::ZERO).unwrap();
            listed.sort();
            let mut want = vec![ha.clone(), hb.clone()];
            want.sort();
            assert_eq!(listed, want);
            assert_eq!(std::fs::read(store.path_of(&ha)).unwrap(), a);
            assert_eq!(
                std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
                0
            );
            store.remove(&ha).unwrap();
            store.remove(&ha).unwrap();
            assert_eq!(store.list(Duration::ZERO).unwrap(), vec![hb]);
        }
    }
}
