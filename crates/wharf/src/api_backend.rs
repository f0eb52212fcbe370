//! The admin REST API's operations (`wharf_http::AdminApi`): each call runs the same shared
//! operation (`ops`) as the matching CLI verb, and its result or error becomes JSON.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use wharf_directory::Directory;
use wharf_http::{AdminApi, ApiCall, ApiError, ApiReply, TokenGrant};
use wharf_store::queue::QueueStore;

use crate::cli::DkimAlgo;
use crate::config::Loaded;
use crate::ops::{self, OpError, OpErrorKind, Size};

pub struct ApiBackend {
    cfg: Arc<Loaded>,
    directory: Directory,
    queue: Arc<dyn QueueStore>,
}

impl ApiBackend {
    pub fn new(cfg: Arc<Loaded>, directory: Directory, queue: Arc<dyn QueueStore>) -> ApiBackend {
        ApiBackend {
            cfg,
            directory,
            queue,
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e.kind {
            OpErrorKind::NotFound => ApiError::not_found(e.message),
            OpErrorKind::Conflict => ApiError::conflict(e.message),
            OpErrorKind::Invalid => ApiError::invalid(e.message),
            OpErrorKind::Unavailable => ApiError::unavailable(e.message),
            OpErrorKind::Internal => ApiError::internal(e.message),
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("json: {e}")))
}

fn ok<T: Serialize>(v: &T) -> Result<ApiReply, ApiError> {
    Ok(ApiReply::Ok(to_json(v)?))
}

fn created<T: Serialize>(v: &T) -> Result<ApiReply, ApiError> {
    Ok(ApiReply::Created(to_json(v)?))
}

#[async_trait]
impl AdminApi for ApiBackend {
    async fn token(&self, secret: &str) -> Result<Option<TokenGrant>, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let token = ops::tokens::verify(self.directory.store().as_ref(), secret, now).await?;
        Ok(token.map(|t| TokenGrant {
            name: t.name,
            scopes: t.scopes,
        }))
    }

    async fn is_admin(&self, address: &str) -> Result<bool, ApiError> {
        let account = ops::accounts::find(&self.directory, address).await?;
        Ok(ops::accounts::is_admin(&self.directory, &account).await?)
    }

    async fn call(&self, call: ApiCall) -> Result<ApiReply, ApiError> {
        let dir = &self.directory;
        let cfg = self.cfg.as_ref();
        match call {
            ApiCall::ListDomains => ok(&ops::domains::list(dir).await?),
            ApiCall::AddDomain { name } => created(&ops::domains::add(dir, &name).await?),
            ApiCall::DeleteDomain { name } => {
                ops::domains::delete(dir, &name).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ListDkimKeys { domain } => ok(&ops::dkim::list(cfg, dir, &domain).await?),
            ApiCall::GenerateDkimKey {
                domain,
                selector,
                algorithm,
            } => {
                let algo = match algorithm.to_ascii_lowercase().as_str() {
                    "ed25519" => DkimAlgo::Ed25519,
                    "rsa" => DkimAlgo::Rsa,
                    other => {
                        return Err(ApiError::invalid(format!(
                            "unknown algorithm {other:?}: ed25519 or rsa"
                        )));
                    }
                };
                let (key, _) =
                    ops::dkim::generate(cfg, dir, &domain, selector.as_deref(), algo).await?;
                created(&key)
            }
            ApiCall::DnsRecords { domain } => ok(&ops::dkim::dns_records(cfg, dir, &domain).await?),
            ApiCall::ListAccounts { domain } => {
                ok(&ops::accounts::list(dir, domain.as_deref()).await?)
            }
            ApiCall::GetAccount { address } => ok(&ops::accounts::get(dir, &address).await?),
            ApiCall::AddAccount {
                address,
                password,
                quota,
            } => {
                let quota = match quota {
                    Some(q) => ops::parse_size(&q)?,
                    None => 0,
                };
                created(&ops::accounts::add(dir, &address, &password, quota).await?)
            }
            ApiCall::DeleteAccount { address } => {
                ops::accounts::delete(dir, &address).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::SetPassword { address, password } => {
                ops::accounts::set_password(dir, &address, &password).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ChangeOwnPassword { address, password } => {
                ops::accounts::change_own_password(dir, &address, &password).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::GetQuota { address } => quota_reply(&ops::accounts::get(dir, &address).await?),
            ApiCall::SetQuota { address, quota } => {
                let bytes = ops::parse_size(&quota)?;
                quota_reply(&ops::accounts::set_quota(dir, &address, bytes).await?)
            }
            ApiCall::SetDisabled { address, disabled } => {
                ok(&ops::accounts::set_disabled(dir, &address, disabled).await?)
            }
            ApiCall::GetRules { address } => ok(&ops::rules::get(dir, &address).await?),
            ApiCall::SetVacation { address, vacation } => {
                let v = vacation.map(|v| wharf_sieve::simple::SimpleVacation {
                    subject: v.subject,
                    body: v.body,
                    from: v.from,
                    until: v.until,
                    days: v.days.unwrap_or(7),
                });
                ok(&ops::rules::set_vacation(&self.cfg, dir, &address, v).await?)
            }
            ApiCall::SetForward { address, forward } => {
                let f = forward.map(|f| wharf_sieve::simple::SimpleForward {
                    target: f.target,
                    keep: f.keep,
                });
                ok(&ops::rules::set_forward(&self.cfg, dir, &address, f).await?)
            }
            ApiCall::ListAliases => ok(&ops::aliases::list(dir).await?),
            ApiCall::AddAlias { address, target } => {
                created(&ops::aliases::add(dir, &address, &target).await?)
            }
            ApiCall::DeleteAlias { address, target } => {
                ops::aliases::delete(dir, &address, target.as_deref()).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ListQueue => {
                let entries = ops::queue::list(&self.queue).await?;
                let views: Vec<ops::queue::EntryView> = entries.iter().map(Into::into).collect();
                ok(&views)
            }
            ApiCall::GetQueueEntry { id } => {
                let id = ops::queue::parse_id(&id)?;
                let e = ops::queue::get(&self.queue, id).await?;
                ok(&ops::queue::EntryView::from(&e))
            }
            ApiCall::RetryQueue { id } => {
                let id = id.as_deref().map(ops::queue::parse_id).transpose()?;
                let n = ops::queue::retry(&self.queue, id).await?;
                Ok(ApiReply::Ok(json!({ "due_now": n })))
            }
            ApiCall::DropQueueEntry { id } => {
                let id = ops::queue::parse_id(&id)?;
                ops::queue::drop_entry(&self.queue, id).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ListReports { account } => {
                let found = ops::reports::collect(dir, cfg, account.as_deref()).await?;
                let views: Vec<ops::reports::ReportView> = found
                    .iter()
                    .map(|r| ops::reports::ReportView::of(r, false))
                    .collect();
                ok(&views)
            }
            ApiCall::GetReport { id, account } => {
                let r = ops::reports::find(dir, cfg, account.as_deref(), &id).await?;
                ok(&ops::reports::ReportView::of(&r, true))
            }
            ApiCall::Dashboard => ok(&ops::dashboard::get(cfg, dir, &self.queue).await?),
            ApiCall::ListAppPasswords { address } => {
                ok(&ops::app_passwords::list(dir, &address).await?)
            }
            ApiCall::CreateAppPassword { address, label } => {
                created(&ops::app_passwords::create(dir, &address, &label).await?)
            }
            ApiCall::RevokeAppPassword { address, id } => {
                ops::app_passwords::revoke(dir, &address, id).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ListSpamLists { scope } => {
                ok(&ops::spam_lists::list(dir, scope.as_deref()).await?)
            }
            ApiCall::PutSpamListEntry {
                scope,
                entry,
                allow,
            } => ok(&ops::spam_lists::put(dir, &scope, &entry, allow).await?),
            ApiCall::DeleteSpamListEntry { scope, entry } => {
                ops::spam_lists::delete(dir, &scope, &entry).await?;
                Ok(ApiReply::NoContent)
            }
        }
    }
}

fn quota_reply(a: &ops::accounts::AccountInfo) -> Result<ApiReply, ApiError> {
    #[derive(Serialize)]
    struct Quota<'a> {
        address: &'a str,
        quota: &'a Size,
        used: &'a Size,
    }
    ok(&Quota {
        address: &a.address,
        quota: &a.quota,
        used: &a.used,
    })
}
