//! Where message content waits between the first DATA/BDAT byte and delivery, so that what strangers
//! send costs disk, not memory. Each message may keep `spool_threshold` octets in memory, and only
//! while the service-wide memory budget has room for them (a reservation taken when the body starts
//! and given back when it ends); beyond that, or when the budget is exhausted, its content goes to
//! a temporary file in the spool directory (created 0600 and
//! unlinked at once), so the space is freed as soon as the transaction drops the
//! file: on reply, RSET, error or disconnect, and even after a crash. At end of data a spooled
//! message is read back for delivery (the store takes bytes) under a semaphore that bounds how many
//! large messages are in memory at once.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Spooled content is written in pieces of about this size (the per-session write buffer).
pub const WRITE_CHUNK: usize = 16 * 1024;

/// Shared by every session of a service.
pub struct Spool {
    dir: PathBuf,
    threshold: usize,
    budget: usize,
    used: AtomicUsize,
    large: Arc<Semaphore>,
}

impl Spool {
    /// `threshold`: octets a message may keep in memory; `budget`: the sum across sessions;
    /// `large_in_flight`: spooled messages read back for delivery at once.
    /// The directory is created (0700) when the first file needs it.
    pub fn new(dir: PathBuf, threshold: usize, budget: usize, large_in_flight: usize) -> Spool {
        Spool {
            dir,
            threshold,
            budget,
            used: AtomicUsize::new(0),
            large: Arc::new(Semaphore::new(large_in_flight.max(1))),
        }
    }

    /// The spool of `dir`, shared by every service of the process that names the same directory
    /// (the MX and submission listeners), so the memory budget is one across all their sessions.
    /// The first caller's limits apply.
    pub fn shared(
        dir: PathBuf,
        threshold: usize,
        budget: usize,
        large_in_flight: usize,
    ) -> Arc<Spool> {
        static SPOOLS: Mutex<Option<HashMap<PathBuf, Weak<Spool>>>> = Mutex::new(None);
        let Ok(mut guard) = SPOOLS.lock() else {
            // Poisoned only if a panic happened while holding it; a private spool is still bounded.
            return Arc::new(Spool::new(dir, threshold, budget, large_in_flight));
        };
        let map = guard.get_or_insert_with(HashMap::new);
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(s) = map.get(&dir).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(Spool::new(dir.clone(), threshold, budget, large_in_flight));
        map.insert(dir, Arc::downgrade(&s));
        s
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Octets of the budget reserved now (tests, metrics).
    pub fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserves the in-memory allowance for one message; `None` when the budget cannot cover it
    /// (the message then spools from its first byte).
    pub fn reserve(self: &Arc<Self>) -> Option<Reservation> {
        let n = self.threshold;
        if n == 0 {
            return None;
        }
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur.saturating_add(n) > self.budget {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        spool: Arc::clone(self),
                        n,
                    });
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// A new unnamed spool file, readable and writable by this process only.
    pub fn create_file(&self) -> io::Result<std::fs::File> {
        // Created 0600 with O_EXCL under a random name, which is removed at once: the open file
        // is all that remains (`O_TMPFILE` would honour the umask, not 0600).
        let named = match tempfile::Builder::new()
            .prefix("smtp-")
            .tempfile_in(&self.dir)
        {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_private_dir(&self.dir)?;
                tempfile::Builder::new()
                    .prefix("smtp-")
                    .tempfile_in(&self.dir)?
            }
            r => r?,
        };
        let (file, path) = named.into_parts();
        path.close()?;
        Ok(file)
    }

    /// Waits for a turn to hold one large message in memory for delivery.
    pub async fn large_message_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.large).acquire_owned().await.ok()
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// A message's share of the memory budget, given back on drop.
pub struct Reservation {
    spool: Arc<Spool>,
    n: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.n
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.spool.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// Appends `buf` to `file` off the async threads; hands both back (the buffer for reuse). On an
/// error the file is dropped, which frees it: the message cannot be accepted anyway.
pub async fn append(mut file: std::fs::File, buf: Vec<u8>) -> io::Result<(std::fs::File, Vec<u8>)> {
    tokio::task::spawn_blocking(move || file.write_all(&buf).map(|()| (file, buf)))
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

/// Reads the whole spooled content back, followed by `tail`, with `extra` octets of room.
pub async fn read_back(
    mut file: std::fs::File,
    len: u64,
    tail: Vec<u8>,
    extra: usize,
) -> io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let len = usize::try_from(len).map_err(|_| io::Error::other("spooled message too big"))?;
        let mut out = Vec::with_capacity(len + tail.len() + extra);
        file.seek(SeekFrom::Start(0))?;
        file.take(len as u64).read_to_end(&mut out)?;
        if out.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool file shorter than written",
            ));
        }
        out.extend_from_slice(&tail);
        Ok(out)
    })
    .await
    .map_err(|e| io::Error::other(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_and_given_back() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::new(tmp.path().join("s"), 100, 250, 1));
        let a = spool.reserve().unwrap();
        let b = spool.reserve().unwrap();
        assert!(spool.reserve().is_none(), "a third would exceed the budget");
        assert_eq!(spool.reserved(), 200);
        drop(a);
        let _c = spool.reserve().unwrap();
        drop(b);
        assert_eq!(spool.reserved(), 100);
        let none = Arc::new(Spool::new(tmp.path().join("t"), 0, 250, 1));
        assert!(none.reserve().is_none());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private_unnamed_and_read_back_exactly() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        let spool = Spool::new(dir.clone(), 10, 10, 1);
        let f = spool.create_file().unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let meta = f.metadata().unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 0, "no name in the directory");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let (f, buf) = append(f, b"hello ".to_vec()).await.unwrap();
        assert_eq!(buf, b"hello ");
        let (f, _) = append(f, b"world".to_vec()).await.unwrap();
        let all = read_back(f, 11, b"!".to_vec(), 0).await.unwrap();
        assert_eq!(all, b"hello world!");
    }
}
