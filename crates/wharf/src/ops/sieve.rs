//! An account's Sieve scripts for the admin REST API (`/accounts/{address}/sieve`): the same
//! store operations, name rule, compiler and bounds as ManageSieve (`wharf_managesieve`'s
//! `StoreScripts`, `syntax::script_name`, the `[managesieve]` limits capped by `[sieve]`), so a
//! script put here is one a ManageSieve client lists, and the other way round.

use serde::Serialize;
use wharf_directory::Directory;
use wharf_managesieve::{ScriptStore, StoreScripts};
use wharf_store::StoreError;

use super::{OpError, OpResult};
use crate::config::Loaded;

#[derive(Debug, Clone, Serialize)]
pub struct ScriptView {
    pub name: String,
    /// Octets.
    pub size: u64,
    pub active: bool,
}

/// Why a script was refused: the compiler's position, when it has one, goes to the client.
#[derive(Debug)]
pub enum PutError {
    Op(OpError),
    Compile(wharf_sieve::CompileError),
}

impl From<OpError> for PutError {
    fn from(e: OpError) -> PutError {
        PutError::Op(e)
    }
}

impl From<StoreError> for PutError {
    fn from(e: StoreError) -> PutError {
        PutError::Op(store_error(e))
    }
}

/// ManageSieve's bounds as the server applies them (wiring.rs caps `[managesieve]` by
/// `[sieve]`; `StoreScripts` caps both by the store's own).
fn scripts(cfg: &Loaded, dir: &Directory) -> StoreScripts {
    let c = &cfg.config;
    let max_scripts = c
        .managesieve
        .max_scripts
        .min(u32::try_from(c.sieve.max_scripts).unwrap_or(u32::MAX));
    let max_size = c
        .managesieve
        .max_script_size
        .min(u64::try_from(c.sieve.max_script_bytes).unwrap_or(u64::MAX));
    StoreScripts::new(dir.store().clone(), max_scripts, max_size)
}

/// The store's refusals in ManageSieve's terms (`QUOTA/MAXSCRIPTS`, `QUOTA`).
fn store_error(e: StoreError) -> OpError {
    match e {
        StoreError::OverQuota => OpError::invalid("storage quota exceeded"),
        StoreError::Limit(l) => OpError::invalid(format!("limit reached: {l}")),
        e => e.into(),
    }
}

fn check_name(name: &str) -> OpResult<&str> {
    wharf_managesieve::syntax::script_name(name.as_bytes())
        .map_err(|why| OpError::invalid(format!("invalid script name: {why}")))
}

fn no_such(name: &str) -> OpError {
    OpError::not_found(format!("there is no script {name:?}"))
}

pub async fn list(cfg: &Loaded, dir: &Directory, address: &str) -> OpResult<Vec<ScriptView>> {
    let a = super::accounts::find(dir, address).await?;
    let list = scripts(cfg, dir).list(a.id).await.map_err(store_error)?;
    Ok(list
        .into_iter()
        .map(|s| ScriptView {
            name: s.name,
            size: s.size,
            active: s.active,
        })
        .collect())
}

pub async fn get(cfg: &Loaded, dir: &Directory, address: &str, name: &str) -> OpResult<String> {
    let a = super::accounts::find(dir, address).await?;
    let name = check_name(name)?;
    match scripts(cfg, dir).get(a.id, name).await {
        Ok(Some(text)) => Ok(text),
        Ok(None) | Err(StoreError::NotFound(_)) => Err(no_such(name)),
        Err(e) => Err(store_error(e)),
    }
}

/// PUTSCRIPT: size bound, compile, count bound, store (an active script stays active).
pub async fn put(
    cfg: &Loaded,
    dir: &Directory,
    address: &str,
    name: &str,
    text: &str,
) -> Result<ScriptView, PutError> {
    let a = super::accounts::find(dir, address).await?;
    let name = check_name(name)?;
    let store = scripts(cfg, dir);
    let quota = store.quota(a.id).await?;
    if text.len() as u64 > quota.max_script_size {
        return Err(OpError::invalid(format!(
            "script larger than the maximum of {} octets",
            quota.max_script_size
        ))
        .into());
    }
    let limits = wharf_sieve::CompileLimits {
        max_script_bytes: cfg.config.sieve.max_script_bytes,
        ..Default::default()
    };
    wharf_sieve::compile(text, &limits).map_err(PutError::Compile)?;
    let existing = store.list(a.id).await?;
    let current = existing.iter().find(|s| s.name == name);
    if current.is_none()
        && existing.len() >= usize::try_from(quota.max_scripts).unwrap_or(usize::MAX)
    {
        return Err(OpError::invalid(format!(
            "the account already has {} scripts, the most it may keep",
            existing.len()
        ))
        .into());
    }
    let active = current.is_some_and(|s| s.active);
    store.put(a.id, name, text).await?;
    tracing::info!(
        account = a.address,
        script = name,
        octets = text.len(),
        "api: sieve script stored"
    );
    Ok(ScriptView {
        name: name.to_string(),
        size: text.len() as u64,
        active,
    })
}

/// DELETESCRIPT: the active script is refused (deactivate it first), as ManageSieve does.
pub async fn delete(cfg: &Loaded, dir: &Directory, address: &str, name: &str) -> OpResult<()> {
    let a = super::accounts::find(dir, address).await?;
    let name = check_name(name)?;
    let store = scripts(cfg, dir);
    let existing = store.list(a.id).await.map_err(store_error)?;
    match existing.iter().find(|s| s.name == name) {
        None => return Err(no_such(name)),
        Some(s) if s.active => {
            return Err(OpError::conflict(format!(
                "{name:?} is the active script and cannot be deleted: deactivate it first"
            )));
        }
        Some(_) => {}
    }
    match store.delete(a.id, name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(no_such(name)),
        // Made active between the check above and the delete.
        Err(StoreError::Conflict(_)) => Err(OpError::conflict(format!(
            "{name:?} is the active script and cannot be deleted: deactivate it first"
        ))),
        Err(e) => Err(store_error(e)),
    }
}

/// SETACTIVE: `name` becomes the one active script; `None` deactivates them all.
pub async fn activate(
    cfg: &Loaded,
    dir: &Directory,
    address: &str,
    name: Option<&str>,
) -> OpResult<Vec<ScriptView>> {
    let a = super::accounts::find(dir, address).await?;
    let name = name.map(check_name).transpose()?;
    match scripts(cfg, dir).set_active(a.id, name).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(no_such(name.unwrap_or_default())),
        Err(e) => return Err(store_error(e)),
    }
    list(cfg, dir, &a.address).await
}
