//! App passwords of an account: per-device secrets its user creates on the web self-service
//! pages (shown once), lists with their last use, and revokes. The directory accepts one in
//! place of the account password for IMAP, POP3 and SMTP AUTH (`wharf_directory::app_password`).

use serde::Serialize;
use wharf_directory::{Directory, app_password};
use wharf_store::AppPassword;

use super::{OpError, OpResult};

/// Most app passwords one account may have.
pub const MAX_PER_ACCOUNT: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct AppPasswordView {
    pub id: i64,
    pub label: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<&AppPassword> for AppPasswordView {
    fn from(a: &AppPassword) -> AppPasswordView {
        AppPasswordView {
            id: a.id,
            label: a.label.clone(),
            created_at: super::rfc3339(a.created_at),
            last_used_at: a.last_used_at.map(super::rfc3339),
        }
    }
}

/// A new app password: its listing and the secret, which is never shown again.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    #[serde(flatten)]
    pub app_password: AppPasswordView,
    pub secret: String,
}

pub async fn list(dir: &Directory, address: &str) -> OpResult<Vec<AppPasswordView>> {
    let a = super::accounts::find(dir, address).await?;
    let all = dir.store().list_app_passwords(a.id).await?;
    Ok(all.iter().map(Into::into).collect())
}

pub async fn create(dir: &Directory, address: &str, label: &str) -> OpResult<Created> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(OpError::invalid(
            "an app password's label (the device it is for) is 1 to 100 printable characters",
        ));
    }
    let a = super::accounts::find(dir, address).await?;
    let store = dir.store();
    let secret = app_password::generate();
    let normalized = app_password::normalize(&secret)
        .ok_or_else(|| OpError::internal("generated app password has the wrong shape"))?;
    // The limit is checked in the same transaction as the insert.
    let Some(created) = store
        .create_app_password(
            a.id,
            label,
            &app_password::hash(&normalized),
            MAX_PER_ACCOUNT,
        )
        .await?
    else {
        return Err(OpError::conflict(format!(
            "{} has {MAX_PER_ACCOUNT} app passwords already; revoke one first",
            a.address
        )));
    };
    tracing::info!(
        account = a.address,
        id = created.id,
        label,
        "app password created"
    );
    Ok(Created {
        app_password: (&created).into(),
        secret,
    })
}

pub async fn revoke(dir: &Directory, address: &str, id: i64) -> OpResult<()> {
    let a = super::accounts::find(dir, address).await?;
    if !dir.store().delete_app_password(a.id, id).await? {
        return Err(OpError::not_found(format!(
            "{} has no app password {id}",
            a.address
        )));
    }
    tracing::info!(account = a.address, id, "app password revoked");
    Ok(())
}
