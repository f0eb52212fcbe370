//! Where APPEND literals wait until their command completes: in memory under a budget shared by
//! every session of the service (`LiteralBudget`), or, beyond the spool threshold or when the
//! budget is spent, in an unnamed temp file (`Spool`) that is gone when dropped — on completion,
//! on abort, when the connection goes away, and after a crash. One command has at most one spool
//! file: its spooled literals follow each other in it, each known by its offset and length.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

/// Octets of APPEND literals all sessions of one service may hold in memory at once.
#[derive(Debug)]
pub struct LiteralBudget {
    used: AtomicU64,
    limit: u64,
}

impl LiteralBudget {
    pub fn new(limit: u64) -> Arc<LiteralBudget> {
        Arc::new(LiteralBudget {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Octets currently held by leases.
    pub fn in_use(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserves `n` octets, or `None` when that would exceed the budget.
    pub fn try_reserve(self: &Arc<Self>, n: u64) -> Option<Lease> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.checked_add(n).filter(|&v| v <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Lease {
                        budget: self.clone(),
                        n,
                    });
                }
                Err(now) => cur = now,
            }
        }
    }
}

/// A reservation of the budget, given back when dropped.
#[derive(Debug)]
pub struct Lease {
    budget: Arc<LiteralBudget>,
    n: u64,
}

impl Lease {
    /// Octets this lease holds.
    pub fn octets(&self) -> u64 {
        self.n
    }

    /// Folds another lease into this one (one command, several literals).
    pub fn merge(&mut self, mut other: Lease) {
        self.n += std::mem::take(&mut other.n);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// The spool file of one command, written in sequence. The file has no name from the start
/// (unlinked at creation), so it vanishes when this (or the last `Spooled` read from it) is
/// dropped, and also when the process is killed: nothing is left for a sweep after a crash.
#[derive(Debug)]
pub struct Spool {
    file: tokio::fs::File,
    len: u64,
}

impl Spool {
    pub async fn create(dir: &Path) -> io::Result<Spool> {
        let dir: PathBuf = dir.to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::tempfile_in(&dir)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            len: 0,
        })
    }

    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data).await?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Octets written so far: where the next literal starts.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// All literals are written: the file to read them back from.
    pub async fn finish(mut self) -> io::Result<Arc<std::fs::File>> {
        self.file.flush().await?;
        Ok(Arc::new(self.file.into_std().await))
    }
}

/// One complete spooled literal: `len` octets at `offset` of its command's spool file.
#[derive(Debug)]
pub struct Spooled {
    file: Arc<std::fs::File>,
    offset: u64,
    len: u64,
}

impl Spooled {
    pub fn new(file: Arc<std::fs::File>, offset: u64, len: u64) -> Spooled {
        Spooled { file, offset, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message for the store, which takes it whole; the file goes when the last `Spooled`
    /// of the command is dropped.
    pub async fn read(&self) -> io::Result<Bytes> {
        use std::os::unix::fs::FileExt as _;
        let file = self.file.clone();
        let offset = self.offset;
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        let data = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Bytes::from(data))
    }
}
