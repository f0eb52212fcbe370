//! The S3 blob store (scale-out): message bodies as objects `<prefix>/ab/cd/<sha256>` in one
//! bucket of any S3-compatible store (AWS S3, Garage, MinIO, Ceph RGW), through the
//! `object_store` crate (signing with ring, TLS by rustls with the ring provider).
//!
//! Same contract as the filesystem store (`blob::BlobStore`): content-addressed, written once (a
//! HEAD first; an object already there with the right size is not sent again), durable when S3
//! answers the PUT, read whole or streamed from an offset, removed only when the SQL store says
//! so. Bodies above `MULTIPART_THRESHOLD` go up as a multipart upload (aborted on failure).
//! Failed requests are retried with exponential backoff for at most `S3Config::retry`, each
//! request bounded by `S3Config::timeout`: with S3 unreachable a delivery fails with an I/O
//! error within seconds, and SMTP answers 451 (nothing was committed, nothing names the body).
//!
//! The requests run on a small runtime of this store's own, so the blocking entry points
//! (`put_durable`, `remove`, `list`) work from any thread, and one HTTP connection pool serves
//! every caller.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt as _,
    PutPayload, RetryConfig,
};

use crate::blob::{BlobReader, BlobStore, valid_hash};

/// Bodies larger than this go up as a multipart upload, in parts of this size (S3 wants parts of
/// at least 5 MiB, except the last).
pub const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;
/// Objects written or read at once by one batch (`put_durable`, `read_many`).
const CONCURRENCY: usize = 8;
/// A streaming reader's unit: one ranged GET. At most two are held per reader (one queued, one
/// being read).
const STREAM_RANGE: u64 = 256 * 1024;

/// Where the bodies live and how to reach them. Unset keys fall back to the standard AWS
/// environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then to AWS's defaults (region `us-east-1`;
/// credentials from the web identity token, the container or the instance metadata).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Folder of the bucket the objects go under ("" for the bucket's root), without slashes
    /// at either end.
    pub prefix: String,
    /// `https://s3.example.net` or `http://127.0.0.1:3900`; `None`: AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `https://endpoint/bucket/key` (true) rather than `https://bucket.endpoint/key`.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
    /// How long failed requests are retried (with backoff) before the operation fails.
    pub retry: Duration,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "(set)"),
            )
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl S3Config {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(15);

    /// `s3://bucket` or `s3://bucket/prefix/…`, every other setting at its default (that is,
    /// from the environment).
    pub fn from_url(url: &str) -> Result<S3Config, String> {
        let (bucket, prefix) = parse_s3_url(url)?;
        Ok(S3Config {
            bucket,
            prefix,
            endpoint: None,
            region: None,
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            timeout: S3Config::DEFAULT_TIMEOUT,
            retry: S3Config::DEFAULT_RETRY,
        })
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Splits `s3://bucket/prefix/…` into the bucket and the prefix (slashes at its ends removed).
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(format!("not an s3:// URL: {url:?}"));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if !valid_bucket(bucket) {
        return Err(format!(
            "{url:?}: the bucket name must be 3 to 63 lower-case letters, digits, dots or dashes"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..")
        || prefix.contains("//")
        || prefix.contains(['?', '#', '\\'])
    {
        return Err(format!("{url:?}: invalid prefix"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
}

/// Message bodies in an S3 bucket. See the module documentation.
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    prefix: String,
    label: String,
    /// Runs every request; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("at", &self.label)
            .finish()
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which must not happen on an async thread.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(format!("S3: {e}")),
    }
}

fn invalid_name() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "invalid blob name")
}

impl S3BlobStore {
    /// Builds the client (no request yet: see `probe`).
    pub fn open(cfg: &S3Config) -> io::Result<S3BlobStore> {
        // reqwest's rustls takes the process's default provider: ring, as everywhere in Wharf.
        // (Err: one is installed already.)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&cfg.bucket);
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        // (`from_env` took AWS_REGION, else AWS_DEFAULT_REGION.)
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &cfg.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        let endpoint = b
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .unwrap_or_default();
        let options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_timeout(cfg.timeout)
            .with_connect_timeout(cfg.timeout.min(Duration::from_secs(5)));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 10,
            retry_timeout: cfg.retry,
        };
        let store = b
            .with_virtual_hosted_style_request(!cfg.path_style)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("S3 blob store {}: {e}", cfg.url()),
                )
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wharf-s3")
            .enable_all()
            .build()?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            prefix: cfg.prefix.clone(),
            label: cfg.url(),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// One request that must succeed for the bucket to be usable (reachable, credentials
    /// accepted, bucket there): a HEAD of an object that need not exist.
    pub async fn probe(&self) -> io::Result<()> {
        let store = self.store.clone();
        let path = self.object_path("probe");
        let label = self.label.clone();
        self.spawn(async move {
            match store.head(&path).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io::Error::other(format!(
                    "cannot use the S3 blob store {label}: {e}"
                ))),
            }
        })
        .await
    }

    fn object_path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Where the blob named `hash` lives (the name must be a valid hash).
    fn key(&self, hash: &str) -> ObjectPath {
        self.object_path(&format!("{}/{}/{hash}", &hash[0..2], &hash[2..4]))
    }

    /// Runs `fut` on the store's runtime and waits for it from an async caller.
    async fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = io::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        self.handle.spawn(fut).await.map_err(io::Error::other)?
    }

    /// Runs `fut` on the store's runtime and blocks this thread until it ends. Safe on any
    /// thread (it never enters a runtime itself), but meant for blocking threads.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = io::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| io::Error::other("S3 blob store: request task ended without an answer"))?
    }

    /// The stored size of a blob, or None when absent. Blocking.
    pub fn size_of(&self, hash: &str) -> io::Result<Option<u64>> {
        if !valid_hash(hash) {
            return Err(invalid_name());
        }
        let store = self.store.clone();
        let path = self.key(hash);
        self.block(async move { head_size(&store, &path).await })
    }

    pub async fn read(&self, hash: &str) -> io::Result<Bytes> {
        if !valid_hash(hash) {
            return Err(invalid_name());
        }
        let store = self.store.clone();
        let path = self.key(hash);
        self.spawn(async move { get_all(&store, &path).await })
            .await
    }

    pub async fn read_many(&self, hashes: &[String]) -> io::Result<Vec<io::Result<Bytes>>> {
        let paths: Vec<Option<ObjectPath>> = hashes
            .iter()
            .map(|h| valid_hash(h).then(|| self.key(h)))
            .collect();
        let store = self.store.clone();
        self.spawn(async move {
            let read = futures::stream::iter(paths)
                .map(|p| {
                    let store = store.clone();
                    async move {
                        match p {
                            Some(p) => get_all(&store, &p).await,
                            None => Err(invalid_name()),
                        }
                    }
                })
                .buffered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            Ok(read)
        })
        .await
    }

    /// The object's length and its bytes from `start` on, fetched as ranges of `STREAM_RANGE`
    /// bytes: the next range is asked for only once the reader has taken the previous one, so
    /// at most two ranges are held, and a slow reader never holds an HTTP response open (each
    /// range is one short request, bounded and retried like any other).
    pub async fn open_read(&self, hash: &str, start: u64) -> io::Result<(u64, BlobReader)> {
        if !valid_hash(hash) {
            return Err(invalid_name());
        }
        let store = self.store.clone();
        let path = self.key(hash);
        let (len, first) = {
            let (store, path) = (store.clone(), path.clone());
            self.spawn(async move {
                let options = GetOptions {
                    range: Some(GetRange::Bounded(start..start.saturating_add(STREAM_RANGE))),
                    ..GetOptions::default()
                };
                match store.get_opts(&path, options).await {
                    Ok(got) => {
                        let len = got.meta.size;
                        Ok((len, got.bytes().await.map_err(to_io)?))
                    }
                    Err(e @ object_store::Error::NotFound { .. }) => Err(to_io(e)),
                    Err(e) => {
                        // A start at or past the end (an empty object too) is refused (416):
                        // the rest is empty.
                        match head_size(&store, &path).await? {
                            Some(len) if start >= len => Ok((len, Bytes::new())),
                            _ => Err(to_io(e)),
                        }
                    }
                }
            })
            .await?
        };
        let mut next = start.saturating_add(first.len() as u64);
        if next >= len || first.is_empty() {
            return Ok((len, Box::new(io::Cursor::new(first))));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        self.handle.spawn(async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            while next < len {
                let end = next.saturating_add(STREAM_RANGE).min(len);
                let range = match store.get_range(&path, next..end).await {
                    Ok(b) if !b.is_empty() => {
                        next += b.len() as u64;
                        Ok(b)
                    }
                    Ok(_) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "S3 object shorter than its size",
                    )),
                    Err(e) => Err(to_io(e)),
                };
                let failed = range.is_err();
                if tx.send(range).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok((
            len,
            Box::new(ChunkReader {
                rx,
                current: Bytes::new(),
            }),
        ))
    }

    /// Stores every blob not already present and returns when S3 has acknowledged all of them
    /// (an acknowledged PUT is durable). Blocking.
    pub fn put_durable(&self, items: &[(&str, &[u8])]) -> io::Result<()> {
        let mut seen = HashSet::new();
        let mut todo: Vec<(ObjectPath, Bytes)> = Vec::new();
        for (h, data) in items {
            if !valid_hash(h) {
                return Err(invalid_name());
            }
            if seen.insert(*h) {
                todo.push((self.key(h), Bytes::copy_from_slice(data)));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        self.block(async move {
            futures::stream::iter(todo)
                .map(|(path, data)| {
                    let store = store.clone();
                    async move { put_once(&store, &path, data).await }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ())
        })
    }

    /// Removes one blob; absent is not an error. Blocking.
    pub fn remove(&self, hash: &str) -> io::Result<()> {
        if !valid_hash(hash) {
            return Ok(());
        }
        let store = self.store.clone();
        let path = self.key(hash);
        self.block(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(to_io(e)),
            }
        })
    }

    /// Every stored blob whose object was last modified at least `min_age` ago. Blocking.
    pub fn list(&self, min_age: Duration) -> io::Result<Vec<String>> {
        let store = self.store.clone();
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let depth = prefix.as_ref().map_or(0, |p| p.parts().count());
        let cutoff = SystemTime::now()
            .checked_sub(min_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.block(async move {
            let mut listed = store.list(prefix.as_ref());
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(to_io)?;
                let parts: Vec<String> = meta
                    .location
                    .parts()
                    .map(|p| p.as_ref().to_string())
                    .collect();
                // prefix / ab / cd / hash, nothing else.
                let [outer, inner, name] = &parts[depth.min(parts.len())..] else {
                    continue;
                };
                if !valid_hash(name) || outer != &name[0..2] || inner != &name[2..4] {
                    continue;
                }
                if min_age.is_zero() || SystemTime::from(meta.last_modified) <= cutoff {
                    out.push(name.clone());
                }
            }
            Ok(out)
        })
    }
}

async fn head_size(store: &AmazonS3, path: &ObjectPath) -> io::Result<Option<u64>> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(to_io(e)),
    }
}

async fn get_all(store: &AmazonS3, path: &ObjectPath) -> io::Result<Bytes> {
    store
        .get(path)
        .await
        .map_err(to_io)?
        .bytes()
        .await
        .map_err(to_io)
}

/// Writes one object unless it is there already with the same size (its name is its content's
/// hash, so the same size means the same bytes; a different size can only be a damaged copy,
/// which this write replaces).
async fn put_once(store: &AmazonS3, path: &ObjectPath, data: Bytes) -> io::Result<()> {
    if head_size(store, path).await? == Some(data.len() as u64) {
        return Ok(());
    }
    if data.len() <= MULTIPART_THRESHOLD {
        store
            .put(path, PutPayload::from_bytes(data))
            .await
            .map_err(to_io)?;
        return Ok(());
    }
    let mut upload = store.put_multipart(path).await.map_err(to_io)?;
    let mut parts = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let end = (at + MULTIPART_THRESHOLD).min(data.len());
        parts.push(upload.put_part(PutPayload::from_bytes(data.slice(at..end))));
        at = end;
    }
    let sent = futures::stream::iter(parts)
        .buffer_unordered(CONCURRENCY / 2)
        .try_collect::<Vec<()>>()
        .await;
    let done = match sent {
        Ok(_) => upload.complete().await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        if let Err(abort) = upload.abort().await {
            tracing::warn!(error = %abort, object = %path, "S3: could not abort a failed multipart upload (a bucket lifecycle rule removes it)");
        }
        return Err(to_io(e));
    }
    Ok(())
}

/// An `AsyncRead` over the chunks a task on the store's runtime receives.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl tokio::io::AsyncRead for ChunkReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.current.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.current = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                // The sender ended: the whole object was read.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.current.len().min(buf.remaining());
        let chunk = self.current.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    fn put_durable(&self, items: &[(&str, &[u8])]) -> io::Result<()> {
        S3BlobStore::put_durable(self, items)
    }
    async fn read(&self, hash: &str) -> io::Result<Bytes> {
        S3BlobStore::read(self, hash).await
    }
    async fn read_many(&self, hashes: &[String]) -> io::Result<Vec<io::Result<Bytes>>> {
        S3BlobStore::read_many(self, hashes).await
    }
    async fn open_read(&self, hash: &str, start: u64) -> io::Result<(u64, BlobReader)> {
        S3BlobStore::open_read(self, hash, start).await
    }
    fn remove(&self, hash: &str) -> io::Result<()> {
        S3BlobStore::remove(self, hash)
    }
    fn list(&self, min_age: Duration) -> io::Result<Vec<String>> {
        S3BlobStore::list(self, min_age)
    }
    /// Nothing to sweep: a write is one PUT (or a multipart upload, aborted when it fails; one
    /// whose writer died is left to the bucket's lifecycle rule, see docs/store.md).
    fn sweep_tmp(&self, _min_age: Duration) -> io::Result<u64> {
        Ok(0)
    }
    /// Never alone: another node may always be writing to the bucket, so the immediate startup
    /// sweep never runs; the periodic one (objects older than an hour) does the work.
    fn try_lock_alone(&self) -> io::Result<bool> {
        Ok(false)
    }
    fn join_shared(&self, _was_alone: bool) -> io::Result<()> {
        Ok(())
    }
    fn size_of(&self, hash: &str) -> io::Result<Option<u64>> {
        S3BlobStore::size_of(self, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_s3_url("s3://mail-blobs").unwrap(),
            ("mail-blobs".to_string(), String::new())
        );
        assert_eq!(
            parse_s3_url("s3://mail-blobs/a/b/").unwrap(),
            ("mail-blobs".to_string(), "a/b".to_string())
        );
        assert!(parse_s3_url("s3://").is_err());
        assert!(parse_s3_url("s3://Upper").is_err());
        assert!(parse_s3_url("http://x/y").is_err());
        assert!(parse_s3_url("s3://bucket/a/../b").is_err());
        assert!(parse_s3_url("s3://bucket/a//b").is_err());
        let c = S3Config::from_url("s3://bkt/p").unwrap();
        assert_eq!(c.url(), "s3://bkt/p");
        let mut c = c;
        c.secret_access_key = Some("hunter2".into());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
