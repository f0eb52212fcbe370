//! The simple forms of Sieve (vacation reply, forwarding) for one account: one implementation
//! for `wharf vacation`/`wharf forward` and the API's `/accounts/{address}/rules`. The rules are
//! `wharf_sieve::simple` rules kept as the generated script `wharf-rules`, made active when
//! set and removed when the last rule is cleared.

use serde::Serialize;
use wharf_directory::Directory;
use wharf_sieve::simple::{SCRIPT_NAME, SimpleForward, SimpleRules, SimpleVacation};
use wharf_store::{AccountId, Store, StoreError};

use super::{OpError, OpResult};
use crate::config::Loaded;

/// What the forms say for an account, and which script runs.
#[derive(Debug, Clone, Serialize)]
pub struct RulesView {
    pub address: String,
    pub vacation: Option<SimpleVacation>,
    pub forward: Option<SimpleForward>,
    /// The active script's name (`wharf-rules` when the forms run, another when a user's own
    /// script does), if any.
    pub active_script: Option<String>,
    /// Set when saving made `wharf-rules` active instead of this script (kept, not deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_script: Option<String>,
}

async fn current(store: &dyn Store, account: AccountId) -> OpResult<(SimpleRules, Option<String>)> {
    let rules = store
        .get_sieve_script(account, SCRIPT_NAME)
        .await?
        .and_then(|t| SimpleRules::from_script(&t))
        .unwrap_or_default();
    let active = store.active_sieve_script(account).await?.map(|(n, _)| n);
    Ok((rules, active))
}

pub async fn get(dir: &Directory, address: &str) -> OpResult<RulesView> {
    let a = super::accounts::find(dir, address).await?;
    let (rules, active) = current(dir.store().as_ref(), a.id).await?;
    Ok(RulesView {
        address: a.address,
        vacation: rules.vacation,
        forward: rules.forward,
        active_script: active,
        replaced_script: None,
    })
}

pub async fn set_vacation(
    cfg: &Loaded,
    dir: &Directory,
    address: &str,
    vacation: Option<SimpleVacation>,
) -> OpResult<RulesView> {
    change(cfg, dir, address, |r| r.vacation = vacation).await
}

pub async fn set_forward(
    cfg: &Loaded,
    dir: &Directory,
    address: &str,
    forward: Option<SimpleForward>,
) -> OpResult<RulesView> {
    change(cfg, dir, address, |r| r.forward = forward).await
}

async fn change(
    cfg: &Loaded,
    dir: &Directory,
    address: &str,
    edit: impl FnOnce(&mut SimpleRules),
) -> OpResult<RulesView> {
    let a = super::accounts::find(dir, address).await?;
    let store = dir.store();
    let (mut rules, active) = current(store.as_ref(), a.id).await?;
    edit(&mut rules);
    let replaced = active.clone().filter(|n| n != SCRIPT_NAME);
    if rules.is_empty() {
        if active.as_deref() == Some(SCRIPT_NAME) {
            store.set_active_sieve_script(a.id, None).await?;
        }
        match store.delete_sieve_script(a.id, SCRIPT_NAME).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        return get(dir, &a.address).await;
    }
    let text = rules
        .to_script()
        .map_err(|e| OpError::invalid(e.to_string()))?;
    let limits = wharf_sieve::CompileLimits {
        max_script_bytes: cfg.config.sieve.max_script_bytes,
        ..Default::default()
    };
    wharf_sieve::compile(&text, &limits).map_err(|e| OpError::invalid(e.to_string()))?;
    let scripts = store.list_sieve_scripts(a.id).await?;
    if !scripts.iter().any(|s| s.name == SCRIPT_NAME)
        && scripts.len() >= cfg.config.sieve.max_scripts
    {
        return Err(OpError::conflict(format!(
            "the account already has {} scripts (the [sieve] max_scripts bound)",
            scripts.len()
        )));
    }
    store.put_sieve_script(a.id, SCRIPT_NAME, &text).await?;
    store
        .set_active_sieve_script(a.id, Some(SCRIPT_NAME))
        .await?;
    let mut view = get(dir, &a.address).await?;
    view.replaced_script = replaced;
    Ok(view)
}
