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

/// API imports that may run at once (a further one is a 429).
const MAX_IMPORTS: usize = 2;

/// How long one `GET /doctor` may take in all: one listener's probe alone may take 30 s, and
/// the client is waiting on the other end.
const DOCTOR_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

pub struct ApiBackend {
    cfg: Arc<Loaded>,
    directory: Directory,
    queue: Arc<dyn QueueStore>,
    /// Imports running at once: each holds a blocking thread and up to a few messages in
    /// memory, so a token holder must not be able to start them without end.
    imports: Arc<tokio::sync::Semaphore>,
    /// The running server's reload (`POST /reload`); `None` outside `wharf serve`.
    reloader: Option<Arc<crate::reload::Reloader>>,
    /// Held while a doctor run is under way: each run connects to every listener and sends a
    /// few dozen DNS queries, so a client must not be able to pile them up.
    doctor: Arc<tokio::sync::Semaphore>,
}

impl ApiBackend {
    pub fn new(cfg: Arc<Loaded>, directory: Directory, queue: Arc<dyn QueueStore>) -> ApiBackend {
        ApiBackend {
            cfg,
            directory,
            queue,
            imports: Arc::new(tokio::sync::Semaphore::new(MAX_IMPORTS)),
            reloader: None,
            doctor: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    pub fn with_reloader(mut self, reloader: Arc<crate::reload::Reloader>) -> ApiBackend {
        self.reloader = Some(reloader);
        self
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

    async fn import(
        &self,
        input: wharf_http::ImportInput,
        body: wharf_http::RequestBody,
    ) -> Result<ApiReply, ApiError> {
        let Ok(_permit) = self.imports.clone().try_acquire_owned() else {
            return Err(ApiError::new(
                429,
                "busy",
                format!("{MAX_IMPORTS} imports are running; try again when one is done"),
            ));
        };
        crate::api_import::import(&self.cfg, &self.directory, input, body).await
    }

    async fn call(&self, call: ApiCall) -> Result<ApiReply, ApiError> {
        let dir = &self.directory;
        let cfg = self.cfg.as_ref();
        match call {
            ApiCall::ListDomains { page: None } => ok(&ops::domains::list(dir).await?),
            ApiCall::ListDomains { page: Some(page) } => {
                let after = page.key_part(0, 1)?;
                let items = ops::domains::list_page(dir, after, page.limit + 1).await?;
                page.reply(items, |d| vec![d.name.clone()], to_json_slice)
            }
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
                let key = ops::dkim::generate(cfg, dir, &domain, selector.as_deref(), algo).await?;
                created(&key)
            }
            ApiCall::DnsRecords { domain } => ok(&ops::dkim::dns_records(cfg, dir, &domain).await?),
            ApiCall::ListAccounts { domain, page: None } => {
                ok(&ops::accounts::list(dir, domain.as_deref()).await?)
            }
            ApiCall::ListAccounts {
                domain,
                page: Some(page),
            } => {
                let after = key_pair(&page)?;
                let items =
                    ops::accounts::list_page(dir, domain.as_deref(), after, page.limit + 1).await?;
                page.reply(items, ops::accounts::page_key, to_json_slice)
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
            ApiCall::ListAliases { page: None } => ok(&ops::aliases::list(dir).await?),
            ApiCall::ListAliases { page: Some(page) } => {
                let after = key_pair(&page)?;
                let items = ops::aliases::list_page(dir, after, page.limit + 1).await?;
                page.reply(
                    items,
                    |a| vec![a.address.clone(), a.target.clone()],
                    to_json_slice,
                )
            }
            ApiCall::AddAlias { address, target } => {
                created(&ops::aliases::add(dir, &address, &target).await?)
            }
            ApiCall::DeleteAlias { address, target } => {
                ops::aliases::delete(dir, &address, target.as_deref()).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ListQueue { page: None } => {
                let entries = ops::queue::list(&self.queue).await?;
                let views: Vec<ops::queue::EntryView> = entries.iter().map(Into::into).collect();
                ok(&views)
            }
            ApiCall::ListQueue { page: Some(page) } => {
                let after = page
                    .key_part(0, 1)?
                    .map(|id| id.parse::<i64>())
                    .transpose()
                    .map_err(|_| ApiError::invalid("bad cursor: not one of this list's"))?;
                let entries = ops::queue::list_page(&self.queue, after, page.limit + 1).await?;
                let views: Vec<ops::queue::EntryView> = entries.iter().map(Into::into).collect();
                page.reply(views, |e| vec![e.id.to_string()], to_json_slice)
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
            ApiCall::ListReports {
                account,
                page: None,
            } => {
                let found = ops::reports::collect(dir, cfg, account.as_deref()).await?;
                let views: Vec<ops::reports::ReportView> = found
                    .iter()
                    .map(|r| ops::reports::ReportView::of(r, false))
                    .collect();
                ok(&views)
            }
            ApiCall::ListReports {
                account,
                page: Some(page),
            } => {
                // Parsed out of the messages of a mailbox, so there is no query to bound: the
                // page is cut from the sorted whole, keyed by (period start, org, report id, our
                // domain, kind): one org's report id may cover two of our domains, or come as
                // DMARC and TLS-RPT, and a key that repeats would skip one at a page boundary.
                let key = |r: &wharf_inbound::reports::ReportSummary| {
                    vec![
                        format!("{:020}", r.begin),
                        r.org.clone(),
                        r.report_id.clone(),
                        r.domain.clone(),
                        format!("{:?}", r.kind),
                    ]
                };
                let mut found = ops::reports::collect(dir, cfg, account.as_deref()).await?;
                found.sort_by_cached_key(key);
                let after = match &page.after {
                    None => None,
                    Some(k) if k.len() == 5 => Some(k.clone()),
                    Some(_) => {
                        return Err(ApiError::invalid("bad cursor: not one of this list's"));
                    }
                };
                let items: Vec<_> = found
                    .into_iter()
                    .filter(|r| after.as_ref().is_none_or(|a| key(r) > *a))
                    .take(page.limit + 1)
                    .collect();
                page.reply(items, key, |rs| {
                    let views: Vec<ops::reports::ReportView> = rs
                        .iter()
                        .map(|r| ops::reports::ReportView::of(r, false))
                        .collect();
                    to_json(&views)
                })
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
            ApiCall::ListSpamLists { scope, page: None } => {
                ok(&ops::spam_lists::list(dir, scope.as_deref()).await?)
            }
            ApiCall::ListSpamLists {
                scope,
                page: Some(page),
            } => {
                let after = key_pair(&page)?;
                let items =
                    ops::spam_lists::list_page(dir, scope.as_deref(), after, page.limit + 1)
                        .await?;
                page.reply(
                    items,
                    |e| vec![e.scope.clone(), e.entry.clone()],
                    to_json_slice,
                )
            }
            ApiCall::ListSieveScripts { address } => {
                ok(&ops::sieve::list(cfg, dir, &address).await?)
            }
            ApiCall::GetSieveScript { address, name } => Ok(ApiReply::Text(
                ops::sieve::get(cfg, dir, &address, &name).await?,
            )),
            ApiCall::PutSieveScript {
                address,
                name,
                script,
            } => match ops::sieve::put(cfg, dir, &address, &name, &script).await {
                Ok(view) => ok(&view),
                Err(ops::sieve::PutError::Op(e)) => Err(e.into()),
                Err(ops::sieve::PutError::Compile(e)) => {
                    let mut err = ApiError::new(422, "invalid_script", e.to_string());
                    err.location = Some((e.line, e.column));
                    Err(err)
                }
            },
            ApiCall::DeleteSieveScript { address, name } => {
                ops::sieve::delete(cfg, dir, &address, &name).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::ActivateSieveScript { address, name } => {
                ok(&ops::sieve::activate(cfg, dir, &address, name.as_deref()).await?)
            }
            ApiCall::ListMailboxes { address, page } => {
                let page = page.unwrap_or(wharf_http::Page {
                    limit: wharf_store::MAX_MAILBOXES,
                    after: None,
                });
                let after = page.key_part(0, 1)?;
                let items = ops::mailboxes::list_page(dir, &address, after, page.limit + 1).await?;
                page.reply(items, |m| vec![m.name.clone()], to_json_slice)
            }
            ApiCall::CreateMailbox {
                address,
                name,
                special_use,
                subscribe,
            } => created(
                &ops::mailboxes::create(dir, &address, &name, special_use.as_deref(), subscribe)
                    .await?,
            ),
            ApiCall::DeleteMailbox { address, name } => {
                ops::mailboxes::delete(dir, &address, &name).await?;
                Ok(ApiReply::NoContent)
            }
            ApiCall::RenameMailbox { address, name, to } => {
                ok(&ops::mailboxes::rename(dir, &address, &name, &to).await?)
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
            ApiCall::Doctor { domain } => {
                let Ok(_permit) = self.doctor.clone().try_acquire_owned() else {
                    return Err(ApiError::new(
                        429,
                        "busy",
                        "a doctor run is under way; try again when it is done",
                    ));
                };
                let domains = match domain {
                    Some(d) => vec![ops::domains::known(dir, &d).await?],
                    None => ops::domains::list(dir)
                        .await?
                        .into_iter()
                        .map(|d| d.name.to_ascii_lowercase())
                        .collect(),
                };
                let keys = crate::dns_records::stored_keys(cfg, &**dir.store())
                    .await
                    .map_err(|e| ApiError::internal(format!("doctor: {e:#}")))?;
                let report = crate::doctor::report(cfg, &domains, &keys, DOCTOR_DEADLINE)
                    .await
                    .map_err(|e| ApiError::internal(format!("doctor: {e:#}")))?;
                Ok(ApiReply::Ok(report.json()))
            }
            ApiCall::Reload => {
                let Some(reloader) = &self.reloader else {
                    return Err(ApiError::unavailable("no running server to reload"));
                };
                let reloader = reloader.clone();
                // File reads and key parsing: off the runtime's worker threads.
                let done = tokio::task::spawn_blocking(move || reloader.reload("API"))
                    .await
                    .map_err(|e| ApiError::internal(format!("reload: {e}")))?;
                match done {
                    Ok(report) => ok(&report),
                    Err(e) => Err(ApiError::new(422, "config_error", e.to_string())),
                }
            }
        }
    }
}

fn to_json_slice<T: Serialize>(items: &[T]) -> Result<Value, ApiError> {
    to_json(&items)
}

/// A two-part cursor key (most lists are ordered by a pair of columns).
fn key_pair(page: &wharf_http::Page) -> Result<Option<(&str, &str)>, ApiError> {
    Ok(page.key_part(0, 2)?.zip(page.key_part(1, 2)?))
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
