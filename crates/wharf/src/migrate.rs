//! `wharf migrate`: the embedded store copied to PostgreSQL (and the blobs to another folder),
//! through `wharf_store::migrate`, with the verification printed and the config change to make.

use std::path::Path;

use anyhow::{Result, bail};

use crate::config::Loaded;
use crate::storage::store_err;

pub async fn run(cfg: &Loaded, to: &str, blobs_to: Option<&Path>) -> Result<()> {
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
    println!("copying {} to {to}", db.display());
    let report = wharf_store::migrate::embedded_to_postgres(&db, to, &|line| println!("  {line}"))
        .await
        .map_err(store_err)?;
    if let Some(dir) = blobs_to {
        let from = cfg.blob_dir();
        let (copied, present) = wharf_store::migrate::copy_blobs(&from, dir).map_err(store_err)?;
        println!(
            "blobs: {copied} copied to {}, {present} already there (each checked against its hash)",
            dir.display()
        );
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
    if let Some(dir) = blobs_to {
        println!("  blob_dir = \"{}\"", dir.display());
    }
    Ok(())
}
