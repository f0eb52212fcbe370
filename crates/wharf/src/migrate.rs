//! `wharf migrate`: the embedded store copied to PostgreSQL (and the blobs to another folder or
//! an S3 bucket), through `wharf_store::migrate`, with the verification printed and the config
//! change to make.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use wharf_store::blob_s3::{S3BlobStore, S3Config};

use crate::config::Loaded;
use crate::storage::store_err;

/// Where `--blobs-to` sends the bodies.
enum BlobTarget {
    Dir(PathBuf),
    S3 {
        config: S3Config,
        store: Arc<S3BlobStore>,
    },
}

/// `--blobs-to`: a folder, or `s3://bucket/prefix` (endpoint, region and credentials from the
/// standard AWS environment variables), opened and probed: a bucket that cannot be used fails
/// before the database is copied.
async fn blob_target(arg: &str) -> Result<BlobTarget> {
    if !arg.starts_with("s3://") {
        return Ok(BlobTarget::Dir(PathBuf::from(arg)));
    }
    let config = S3Config::from_url(arg).map_err(|e| anyhow::anyhow!("--blobs-to {e}"))?;
    let store =
        S3BlobStore::open(&config).with_context(|| format!("--blobs-to {}", config.url()))?;
    store.probe().await?;
    Ok(BlobTarget::S3 {
        config,
        store: Arc::new(store),
    })
}

pub async fn run(cfg: &Loaded, to: &str, blobs_to: Option<&str>) -> Result<()> {
    let url = cfg.store_url();
    let Some(db) = wharf_store::backup::sqlite_path(&url) else {
        bail!("the configured store ({url}) is not the embedded one: nothing to migrate from");
    };
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a PostgreSQL URL (postgres://user@host/db), not {to:?}");
    }
    if !db.exists() {
        bail!("no embedded store at {}", db.display());
    }
    if cfg.blob_s3().is_some() {
        bail!("the configured blobs are in S3 already: migrate copies them from a blob folder");
    }
    let blobs_to = match blobs_to {
        Some(arg) => Some(blob_target(arg).await?),
        None => None,
    };
    println!("copying {} to {to}", db.display());
    let report = wharf_store::migrate::embedded_to_postgres(&db, to, &|line| println!("  {line}"))
        .await
        .map_err(store_err)?;
    let from = cfg.blob_dir();
    match &blobs_to {
        Some(BlobTarget::S3 { config, store }) => {
            let (copied, present) =
                wharf_store::migrate::copy_blobs_to(&from, store.clone(), &|line| {
                    println!("  {line}")
                })
                .await
                .map_err(store_err)?;
            println!(
                "blobs: {copied} copied to {}, {present} already there (each checked against its hash, before and after)",
                config.url()
            );
        }
        Some(BlobTarget::Dir(dir)) => {
            let (src, dst) = (from.clone(), dir.clone());
            let (copied, present) =
                tokio::task::spawn_blocking(move || wharf_store::migrate::copy_blobs(&src, &dst))
                    .await?
                    .map_err(store_err)?;
            println!(
                "blobs: {copied} copied to {}, {present} already there (each checked against its hash)",
                dir.display()
            );
        }
        None => {}
    }
    println!("{:<20} {:>10} {:>10}  hash", "table", "source", "target");
    for t in &report.tables {
        let hash = match t.hashes_match {
            Some(true) => "same",
            Some(false) => "DIFFERENT",
            None => "-",
        };
        println!(
            "{:<20} {:>10} {:>10}  {hash}",
            t.table, t.source_rows, t.target_rows
        );
    }
    if !report.verified() {
        bail!(
            "verification failed: the target differs from the source (see the table above); \
             if the target was not empty, migrate into an empty database"
        );
    }
    println!("verified: every table has the same rows.");
    println!("To switch, stop Wharf and set in {}:", cfg.path.display());
    println!("  [store]\n  url = \"{to}\"");
    match &blobs_to {
        Some(BlobTarget::Dir(dir)) => println!("  blob_dir = \"{}\"", dir.display()),
        Some(BlobTarget::S3 { config: s3, .. }) => {
            println!("  [store.s3]\n  bucket = \"{}\"", s3.bucket);
            if !s3.prefix.is_empty() {
                println!("  prefix = \"{}\"", s3.prefix);
            }
            if let Ok(e) = std::env::var("AWS_ENDPOINT_URL") {
                println!("  endpoint = \"{e}\"");
            }
            if let Ok(r) = std::env::var("AWS_REGION") {
                println!("  region = \"{r}\"");
            }
            println!("  (credentials: access_key_id / secret_access_key, or the AWS_* variables)");
        }
        None => {}
    }
    Ok(())
}
