//! The admin REST API under `/api/v1` (docs/api.md): JSON in and out, authenticated by HTTP
//! Basic (an account with the admin role, its password checked and throttled by the directory
//! as for IMAP) or `Authorization: Bearer <token>` (API tokens with scopes: `read` allows GET,
//! `write` every method). The operations themselves are the binary's ([`AdminApi`]), the same
//! ones its CLI verbs run; this module routes, authenticates and maps errors. Every error is
//! `{"error": {"code": "...", "message": "..."}}`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::routes::{HttpState, client_ip};

/// The OpenAPI 3 description of every route below, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route (method, path under `/api/v1`), for the check that the OpenAPI document and the
/// router agree.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/openapi.json"),
    ("get", "/domains"),
    ("post", "/domains"),
    ("delete", "/domains/{name}"),
    ("get", "/domains/{name}/dkim"),
    ("post", "/domains/{name}/dkim"),
    ("get", "/domains/{name}/dns"),
    ("get", "/accounts"),
    ("post", "/accounts"),
    ("get", "/accounts/{address}"),
    ("delete", "/accounts/{address}"),
    ("put", "/accounts/{address}/password"),
    ("get", "/accounts/{address}/quota"),
    ("put", "/accounts/{address}/quota"),
    ("post", "/accounts/{address}/disable"),
    ("post", "/accounts/{address}/enable"),
    ("get", "/aliases"),
    ("post", "/aliases"),
    ("delete", "/aliases/{address}"),
    ("get", "/queue"),
    ("post", "/queue/retry"),
    ("get", "/queue/{id}"),
    ("delete", "/queue/{id}"),
    ("post", "/queue/{id}/retry"),
    ("get", "/reports"),
    ("get", "/reports/{id}"),
    ("get", "/accounts/{address}/rules"),
    ("put", "/accounts/{address}/rules/vacation"),
    ("delete", "/accounts/{address}/rules/vacation"),
    ("put", "/accounts/{address}/rules/forward"),
    ("delete", "/accounts/{address}/rules/forward"),
    ("get", "/accounts/{address}/app-passwords"),
    ("post", "/accounts/{address}/app-passwords"),
    ("delete", "/accounts/{address}/app-passwords/{id}"),
    ("get", "/spam/lists"),
    ("put", "/spam/lists/{scope}/{entry}"),
    ("delete", "/spam/lists/{scope}/{entry}"),
    ("get", "/accounts/{address}/sieve"),
    ("get", "/accounts/{address}/sieve/{name}"),
    ("put", "/accounts/{address}/sieve/{name}"),
    ("delete", "/accounts/{address}/sieve/{name}"),
    ("post", "/accounts/{address}/sieve/{name}/activate"),
    ("post", "/accounts/{address}/sieve/deactivate"),
    ("get", "/accounts/{address}/mailboxes"),
    ("post", "/accounts/{address}/mailboxes"),
    ("delete", "/accounts/{address}/mailboxes/{name}"),
    ("post", "/accounts/{address}/mailboxes/{name}/rename"),
    ("post", "/accounts/{address}/import"),
    ("post", "/reload"),
    ("get", "/doctor"),
];

/// One operation the API asks the binary to run, its input checked for shape only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCall {
    GetRules {
        address: String,
    },
    /// `None`: turn it off.
    SetVacation {
        address: String,
        vacation: Option<VacationInput>,
    },
    SetForward {
        address: String,
        forward: Option<ForwardInput>,
    },
    /// `page: None` (the web pages) lists everything; the REST API always asks for a page.
    ListDomains {
        page: Option<Page>,
    },
    AddDomain {
        name: String,
    },
    DeleteDomain {
        name: String,
    },
    ListDkimKeys {
        domain: String,
    },
    GenerateDkimKey {
        domain: String,
        selector: Option<String>,
        algorithm: String,
    },
    DnsRecords {
        domain: String,
    },
    ListAccounts {
        domain: Option<String>,
        page: Option<Page>,
    },
    GetAccount {
        address: String,
    },
    AddAccount {
        address: String,
        password: String,
        quota: Option<String>,
    },
    DeleteAccount {
        address: String,
    },
    /// An admin's password reset: also revokes the account's app passwords and ends its web
    /// sessions.
    SetPassword {
        address: String,
        password: String,
    },
    /// A user's change of their own password (web self-service, after the current one was
    /// checked): their app passwords stay.
    ChangeOwnPassword {
        address: String,
        password: String,
    },
    GetQuota {
        address: String,
    },
    SetQuota {
        address: String,
        quota: String,
    },
    SetDisabled {
        address: String,
        disabled: bool,
    },
    ListAliases {
        page: Option<Page>,
    },
    AddAlias {
        address: String,
        target: String,
    },
    DeleteAlias {
        address: String,
        target: Option<String>,
    },
    ListQueue {
        page: Option<Page>,
    },
    GetQueueEntry {
        id: String,
    },
    RetryQueue {
        id: Option<String>,
    },
    DropQueueEntry {
        id: String,
    },
    ListReports {
        account: Option<String>,
        page: Option<Page>,
    },
    GetReport {
        id: String,
        account: Option<String>,
    },
    /// The web admin's dashboard: counts, queue, certificate and local checks.
    Dashboard,
    /// The account's app passwords (web self-service).
    ListAppPasswords {
        address: String,
    },
    /// A new app password labelled with its device; the reply holds the secret (shown once).
    CreateAppPassword {
        address: String,
        label: String,
    },
    RevokeAppPassword {
        address: String,
        id: i64,
    },
    /// The spam filter's allow/block lists, of one scope or all.
    ListSpamLists {
        scope: Option<String>,
        page: Option<Page>,
    },
    /// Puts `entry` on the allow (`allow`) or block list of `scope`.
    PutSpamListEntry {
        scope: String,
        entry: String,
        allow: bool,
    },
    DeleteSpamListEntry {
        scope: String,
        entry: String,
    },
    /// The account's Sieve scripts (name, size, active), as ManageSieve's LISTSCRIPTS.
    ListSieveScripts {
        address: String,
    },
    /// One script's text (answered as `text/plain`).
    GetSieveScript {
        address: String,
        name: String,
    },
    /// Compiles, then stores (creates or replaces) a script, within ManageSieve's bounds.
    PutSieveScript {
        address: String,
        name: String,
        script: String,
    },
    /// Refused while the script is active (ManageSieve's rule).
    DeleteSieveScript {
        address: String,
        name: String,
    },
    /// Makes `name` the active script; `None` deactivates every script.
    ActivateSieveScript {
        address: String,
        name: Option<String>,
    },
    /// The account's mailboxes with their counts, by name.
    ListMailboxes {
        address: String,
        page: Option<Page>,
    },
    CreateMailbox {
        address: String,
        name: String,
        special_use: Option<String>,
        subscribe: bool,
    },
    /// INBOX is refused.
    DeleteMailbox {
        address: String,
        name: String,
    },
    RenameMailbox {
        address: String,
        name: String,
        to: String,
    },
    /// Reads the configuration file again and applies what can change under running sessions
    /// (as SIGHUP does); the reply is the reload's report, a file that does not load a 422.
    Reload,
    /// `wharf doctor`'s checks run by the server itself (listeners, certificate, DNS), of every
    /// domain or only `domain`; the reply is the table as JSON.
    Doctor {
        domain: Option<String>,
    },
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiReply {
    /// 200 with the value.
    Ok(Value),
    /// 201 with the value.
    Created(Value),
    /// 204.
    NoContent,
    /// 200 with one page of a list (a JSON array); `next` is the cursor key of the page after
    /// it, sent as a `Link: <…>; rel="next"` header, `None` on the last page.
    Page {
        items: Value,
        next: Option<Vec<String>>,
    },
    /// 200 with `text/plain; charset=utf-8` (a Sieve script).
    Text(String),
}

/// One page of a list endpoint: at most `limit` items after the item whose key is `after`
/// (the decoded `?after=` cursor: the key parts of the last item of the previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub after: Option<Vec<String>>,
}

/// Items a page holds unless `?limit=` says otherwise.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
/// The largest `?limit=` (a larger one is a 422): a page is built in memory and each item may
/// cost queries (an account's usage, a mailbox's counts).
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Longest `?after=` cursor accepted (ours are a few hundred characters at most).
const MAX_CURSOR_LEN: usize = 4096;

impl Page {
    /// The key part `i` of the cursor, or the 422 a cursor of another shape deserves.
    pub fn key_part(&self, i: usize, parts: usize) -> Result<Option<&str>, ApiError> {
        match &self.after {
            None => Ok(None),
            Some(key) if key.len() == parts => Ok(key.get(i).map(String::as_str)),
            Some(_) => Err(ApiError::invalid("bad cursor: not one of this list's")),
        }
    }

    /// The reply for `items` fetched with one more than `limit` asked for: the extra item only
    /// says that another page follows, and the cursor is the last kept item's `key`.
    pub fn reply<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> Vec<String>,
        json: impl Fn(&[T]) -> Result<Value, ApiError>,
    ) -> Result<ApiReply, ApiError> {
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        let next = if more { items.last().map(&key) } else { None };
        Ok(ApiReply::Page {
            items: json(&items)?,
            next,
        })
    }
}

/// Where `POST /accounts/{address}/import` puts messages, and what the body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInput {
    pub address: String,
    /// Default INBOX; created (with its parents) when missing.
    pub mailbox: Option<String>,
    pub format: ImportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `application/mbox`: any number of messages.
    Mbox,
    /// `message/rfc822`: one message.
    Message,
}

/// A request body read as it arrives, so that an upload is never held whole in memory.
pub struct RequestBody(axum::body::Body);

impl RequestBody {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        use axum::body::HttpBody as _;
        loop {
            let frame =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut self.0).poll_frame(cx)).await;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ApiError::new(
                        400,
                        "bad_request",
                        format!("reading the request body: {e}"),
                    ));
                }
                // Trailers carry no data.
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body when it is at most `cap` octets; a 413 past it.
    pub async fn read_capped(&mut self, cap: usize) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            if out.len() + c.len() > cap {
                self.drain().await;
                return Err(too_large(cap as u64));
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// Reads on, discarding, up to [`MAX_DRAIN`] octets: a client still sending when it is
    /// refused then reads the refusal, where closing on unread data would reset the connection
    /// under it. Past that the connection is closed anyway.
    pub async fn drain(&mut self) {
        let mut left = MAX_DRAIN;
        while left > 0 {
            match self.chunk().await {
                Ok(Some(c)) => left = left.saturating_sub(c.len() as u64),
                _ => return,
            }
        }
    }
}

/// What [`RequestBody::drain`] reads at most after a refusal.
pub const MAX_DRAIN: u64 = 4 << 20;

/// The 413 of a body past `cap` octets.
pub fn too_large(cap: u64) -> ApiError {
    ApiError::new(
        413,
        "too_large",
        format!("the request body is larger than the limit of {cap} octets"),
    )
}

/// A refused or failed call: HTTP status, a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// (line, column) in the request body the error is about (a Sieve script that does not
    /// compile), sent as `line` and `column` beside `code` and `message`.
    pub location: Option<(u32, u32)>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            location: None,
        }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "conflict", message)
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "invalid", message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal", message)
    }
}

/// A live API token: its name and scopes.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub name: String,
    pub scopes: Vec<String>,
}

/// What the binary provides: the token and role checks and the operations.
#[async_trait]
pub trait AdminApi: Send + Sync + 'static {
    /// The live (known, unexpired) token `secret` is, if any.
    async fn token(&self, secret: &str) -> Result<Option<TokenGrant>, ApiError>;
    /// Whether the account has the admin role.
    async fn is_admin(&self, address: &str) -> Result<bool, ApiError>;
    async fn call(&self, call: ApiCall) -> Result<ApiReply, ApiError>;
    /// Imports the messages of `body` (read as it arrives) into an account.
    async fn import(&self, input: ImportInput, body: RequestBody) -> Result<ApiReply, ApiError>;
}

pub type SharedAdminApi = Arc<dyn AdminApi>;

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut error = json!({"code": e.code, "message": e.message});
    if let Some((line, column)) = e.location {
        error["line"] = json!(line);
        error["column"] = json!(column);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn unauthorized(message: &str, bearer_error: bool) -> Response {
    let mut r = error_response(&ApiError::new(401, "unauthorized", message));
    let h = r.headers_mut();
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"wharf\", charset=\"UTF-8\""),
    );
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(if bearer_error {
            "Bearer realm=\"wharf\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"wharf\""
        }),
    );
    r
}

fn throttled(retry_after: std::time::Duration) -> Response {
    let mut r = error_response(&ApiError::new(
        429,
        "throttled",
        "too many failed authentication attempts; try again later",
    ));
    if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

enum Credentials {
    Basic(String, String),
    Bearer(String),
}

fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if rest.len() > 2048 {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Bearer(rest.to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(Credentials::Basic(user.to_string(), pass.to_string()))
}

/// Who is calling, after authentication and the scope check; the response to send otherwise.
async fn authorize(
    state: &HttpState,
    api: &dyn AdminApi,
    ip: IpAddr,
    headers: &HeaderMap,
    write: bool,
) -> Result<String, Response> {
    use wharf_directory::AuthError;
    let Some(creds) = credentials(headers) else {
        return Err(unauthorized(
            "authentication required: HTTP Basic (an admin account) or Bearer (an API token)",
            false,
        ));
    };
    match creds {
        Credentials::Basic(user, pass) => {
            // The account password only: an app password is for mail clients, and must not
            // open the admin API (a stolen device secret would take over the account).
            let account = match state
                .directory()
                .authenticate_account_password(&user, &pass, ip)
                .await
            {
                Ok(a) => a,
                Err(AuthError::Throttled { retry_after }) => return Err(throttled(retry_after)),
                Err(AuthError::Temporary(e)) => {
                    tracing::warn!(error = %e, "api: authentication unavailable");
                    return Err(error_response(&ApiError::unavailable(
                        "authentication temporarily unavailable",
                    )));
                }
                Err(e) => {
                    tracing::info!(%ip, %user, error = ?e, "api: authentication failed");
                    return Err(unauthorized("invalid user name or password", false));
                }
            };
            match api.is_admin(&account.address).await {
                Ok(true) => Ok(account.address),
                Ok(false) => {
                    tracing::info!(%ip, user = account.address, "api: not an admin account");
                    Err(error_response(&ApiError::new(
                        403,
                        "forbidden",
                        format!("{} is not an admin account", account.address),
                    )))
                }
                Err(e) => Err(error_response(&e)),
            }
        }
        Credentials::Bearer(secret) => {
            // Failed guesses count against the source like wrong passwords; the key stands in
            // for the account the throttle would otherwise name.
            let digest = hex::encode(Sha256::digest(secret.as_bytes()));
            let key = format!("api-token:{}", &digest[..16]);
            if let Err(AuthError::Throttled { retry_after }) =
                state.directory().admit_external(ip, &key).await
            {
                return Err(throttled(retry_after));
            }
            let grant = match api.token(&secret).await {
                Ok(Some(g)) => g,
                Ok(None) => {
                    state.directory().fail_external(ip, &key).await;
                    return Err(unauthorized("unknown, revoked or expired API token", true));
                }
                Err(e) => return Err(error_response(&e)),
            };
            let has = |s: &str| grant.scopes.iter().any(|x| x == s);
            let allowed = if write {
                has("write")
            } else {
                has("read") || has("write")
            };
            if !allowed {
                let need = if write { "write" } else { "read" };
                tracing::info!(%ip, token = grant.name, need, "api: token lacks the scope");
                return Err(error_response(&ApiError::new(
                    403,
                    "insufficient_scope",
                    format!("token {} lacks the {need} scope", grant.name),
                )));
            }
            Ok(format!("token {}", grant.name))
        }
    }
}

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Authenticates, then runs `call` (an input error becomes a 422 only once the caller is known).
async fn dispatch(
    state: &HttpState,
    peer: Peer,
    headers: &HeaderMap,
    write: bool,
    call: Result<ApiCall, ApiError>,
) -> Response {
    dispatch_at(state, peer, headers, write, call, None).await
}

/// The API, the client's address and who it is, once authenticated and allowed.
async fn admitted(
    state: &HttpState,
    peer: Peer,
    headers: &HeaderMap,
    write: bool,
) -> Result<(SharedAdminApi, IpAddr, String), Response> {
    let Some(api) = state.admin_api() else {
        return Err(error_response(&ApiError::not_found(
            "the admin API is not enabled",
        )));
    };
    let ip = client_ip(state, peer.map(|c| c.0.0), headers);
    let who = authorize(state, api.as_ref(), ip, headers, write).await?;
    Ok((api.clone(), ip, who))
}

/// `dispatch` for a list: `uri` (under `/api/v1`) is what the `Link` to the next page extends.
async fn dispatch_at(
    state: &HttpState,
    peer: Peer,
    headers: &HeaderMap,
    write: bool,
    call: Result<ApiCall, ApiError>,
    uri: Option<&Uri>,
) -> Response {
    let (api, ip, who) = match admitted(state, peer, headers, write).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let call = match call {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    if write {
        tracing::info!(%ip, caller = who, call = ?redacted(&call), "api: change");
    }
    let effect = call.clone();
    let reply = api.call(call).await;
    if reply.is_ok() {
        crate::web::after_call(state.web_sessions(), &effect);
    }
    respond(reply, uri)
}

fn respond(reply: Result<ApiReply, ApiError>, uri: Option<&Uri>) -> Response {
    match reply {
        Ok(ApiReply::Ok(v)) => axum::Json(v).into_response(),
        Ok(ApiReply::Created(v)) => (StatusCode::CREATED, axum::Json(v)).into_response(),
        Ok(ApiReply::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Ok(ApiReply::Page { items, next }) => {
            let mut r = axum::Json(items).into_response();
            if let (Some(next), Some(uri)) = (next, uri)
                && let Ok(v) = HeaderValue::from_str(&next_link(uri, &next))
            {
                r.headers_mut().insert(header::LINK, v);
            }
            r
        }
        Ok(ApiReply::Text(t)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response()
        }
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!(code = e.code, message = e.message, "api: call failed");
            }
            error_response(&e)
        }
    }
}

/// The `?limit=` and `?after=` of a list request; a 422 for a limit out of 1..=1000 or a
/// cursor that is not one of ours.
fn page(q: &HashMap<String, String>) -> Result<Page, ApiError> {
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "limit must be a number from 1 to {MAX_PAGE_LIMIT}, not {l:?}"
                ))
            })?,
    };
    let after = match q.get("after") {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::invalid("bad cursor"))?),
    };
    Ok(Page { limit, after })
}

/// A cursor is the last item's key parts as a JSON array of strings, in unpadded base64url:
/// opaque to clients, and any key (an address, a mailbox name) survives it.
fn encode_cursor(key: &[String]) -> String {
    use base64::Engine;
    let json = serde_json::to_vec(key).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(text: &str) -> Option<Vec<String>> {
    use base64::Engine;
    if text.is_empty() || text.len() > MAX_CURSOR_LEN {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()?;
    let key: Vec<String> = serde_json::from_slice(&raw).ok()?;
    // Our keys are names and ids: a control character (NUL, which PostgreSQL refuses in text)
    // means a cursor we did not make.
    if key.iter().any(|p| p.chars().any(char::is_control)) {
        return None;
    }
    (!key.is_empty()).then_some(key)
}

/// `</api/v1/…?…&limit=N&after=C>; rel="next"`: the request's own path and query, its cursor
/// replaced by the next page's (the limit kept as asked).
fn next_link(uri: &Uri, next: &[String]) -> String {
    let mut query: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("after=") && p != &"after")
        .map(str::to_string)
        .collect();
    query.push(format!("after={}", encode_cursor(next)));
    format!("</api/v1{}?{}>; rel=\"next\"", uri.path(), query.join("&"))
}

/// The call without passwords, for the log.
pub(crate) fn redacted(call: &ApiCall) -> ApiCall {
    match call {
        ApiCall::AddAccount { address, quota, .. } => ApiCall::AddAccount {
            address: address.clone(),
            password: "***".into(),
            quota: quota.clone(),
        },
        ApiCall::SetPassword { address, .. } => ApiCall::SetPassword {
            address: address.clone(),
            password: "***".into(),
        },
        ApiCall::ChangeOwnPassword { address, .. } => ApiCall::ChangeOwnPassword {
            address: address.clone(),
            password: "***".into(),
        },
        // Not secret, but up to a megabyte: the log gets its size.
        ApiCall::PutSieveScript {
            address,
            name,
            script,
        } => ApiCall::PutSieveScript {
            address: address.clone(),
            name: name.clone(),
            script: format!("<{} octets>", script.len()),
        },
        c => c.clone(),
    }
}

/// A JSON body of type `T`; anything else is a 422.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid("a JSON request body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("bad JSON body: {e}")))
}

/// A size given as a number of bytes or a text like `500M`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeInput {
    Bytes(u64),
    Text(String),
}

impl SizeInput {
    fn text(self) -> String {
        match self {
            SizeInput::Bytes(n) => n.to_string(),
            SizeInput::Text(t) => t,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainIn {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountIn {
    address: String,
    password: String,
    quota: Option<SizeInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordIn {
    password: String,
}

/// The vacation form (`PUT /accounts/{address}/rules/vacation`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VacationInput {
    pub subject: Option<String>,
    pub body: String,
    pub from: Option<String>,
    pub until: Option<String>,
    pub days: Option<u32>,
}

/// The forward form (`PUT /accounts/{address}/rules/forward`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardInput {
    pub target: String,
    #[serde(default)]
    pub keep: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaIn {
    quota: SizeInput,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasIn {
    address: String,
    target: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DkimIn {
    selector: Option<String>,
    algorithm: Option<String>,
}

type Q = Query<HashMap<String, String>>;

/// Refuses every API request that could carry credentials in the clear (plain HTTP from
/// another host): 403 `https_required`, before any credential is looked at.
async fn require_confidential(
    State(state): State<HttpState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let transport = req.extensions().get::<crate::handler::Transport>().copied();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !crate::routes::confidential(&state, transport, peer, req.headers()) {
        return error_response(&ApiError::new(
            403,
            "https_required",
            "the admin API takes credentials: use https",
        ));
    }
    next.run(req).await
}

pub(crate) fn router(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/domains", get(domains_list).post(domains_add))
        .route("/domains/{name}", axum::routing::delete(domains_delete))
        .route("/domains/{name}/dkim", get(dkim_list).post(dkim_generate))
        .route("/domains/{name}/dns", get(dns))
        .route("/accounts", get(accounts_list).post(accounts_add))
        .route(
            "/accounts/{address}",
            get(accounts_get).delete(accounts_delete),
        )
        .route(
            "/accounts/{address}/password",
            axum::routing::put(accounts_password),
        )
        .route(
            "/accounts/{address}/quota",
            get(accounts_quota_get).put(accounts_quota_set),
        )
        .route("/accounts/{address}/disable", post(accounts_disable))
        .route("/accounts/{address}/enable", post(accounts_enable))
        .route("/aliases", get(aliases_list).post(aliases_add))
        .route("/aliases/{address}", axum::routing::delete(aliases_delete))
        .route("/queue", get(queue_list))
        .route("/queue/retry", post(queue_retry_all))
        .route("/queue/{id}", get(queue_get).delete(queue_drop))
        .route("/queue/{id}/retry", post(queue_retry))
        .route("/accounts/{address}/rules", get(rules_get))
        .route(
            "/accounts/{address}/rules/vacation",
            axum::routing::put(vacation_set).delete(vacation_clear),
        )
        .route(
            "/accounts/{address}/rules/forward",
            axum::routing::put(forward_set).delete(forward_clear),
        )
        .route(
            "/accounts/{address}/app-passwords",
            get(app_passwords_list).post(app_passwords_create),
        )
        .route(
            "/accounts/{address}/app-passwords/{id}",
            axum::routing::delete(app_passwords_revoke),
        )
        .route("/spam/lists", get(spam_lists_list))
        .route(
            "/spam/lists/{scope}/{entry}",
            axum::routing::put(spam_list_put).delete(spam_list_delete),
        )
        .route("/accounts/{address}/sieve", get(sieve_list))
        .route(
            "/accounts/{address}/sieve/{name}",
            get(sieve_get).put(sieve_put).delete(sieve_delete),
        )
        // The static segment wins over `{name}`: the other methods reach a script that happens
        // to be called "deactivate".
        .route(
            "/accounts/{address}/sieve/deactivate",
            post(sieve_deactivate)
                .get(sieve_get_deactivate)
                .put(sieve_put_deactivate)
                .delete(sieve_delete_deactivate),
        )
        .route(
            "/accounts/{address}/sieve/{name}/activate",
            post(sieve_activate),
        )
        .route(
            "/accounts/{address}/mailboxes",
            get(mailboxes_list).post(mailboxes_create),
        )
        .route(
            "/accounts/{address}/mailboxes/{name}",
            axum::routing::delete(mailboxes_delete),
        )
        .route(
            "/accounts/{address}/mailboxes/{name}/rename",
            post(mailboxes_rename),
        )
        .route("/accounts/{address}/import", post(import))
        .route("/reports", get(reports_list))
        .route("/reports/{id}", get(reports_get))
        .route("/reload", post(reload))
        .route("/doctor", get(doctor))
        .fallback(|| async { error_response(&ApiError::not_found("no such API endpoint")) })
        .method_not_allowed_fallback(|| async {
            error_response(&ApiError::new(
                405,
                "method_not_allowed",
                "this endpoint does not take that method",
            ))
        })
        .layer(axum::middleware::from_fn_with_state(
            state,
            require_confidential,
        ))
}

async fn reload(State(s): State<HttpState>, p: Peer, h: HeaderMap) -> Response {
    dispatch(&s, p, &h, true, Ok(ApiCall::Reload)).await
}

async fn doctor(State(s): State<HttpState>, p: Peer, h: HeaderMap, Query(q): Q) -> Response {
    let call = ApiCall::Doctor {
        domain: q.get("domain").cloned(),
    };
    dispatch(&s, p, &h, false, Ok(call)).await
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn domains_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListDomains { page: Some(page) });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

async fn domains_add(State(s): State<HttpState>, p: Peer, h: HeaderMap, b: Bytes) -> Response {
    let call = body::<DomainIn>(&b).map(|d| ApiCall::AddDomain { name: d.name });
    dispatch(&s, p, &h, true, call).await
}

async fn domains_delete(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    dispatch(&s, p, &h, true, Ok(ApiCall::DeleteDomain { name })).await
}

async fn dkim_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(domain): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::ListDkimKeys { domain })).await
}

async fn dkim_generate(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(domain): Path<String>,
    b: Bytes,
) -> Response {
    // An empty body means the defaults (Ed25519, dated selector).
    let input = if b.is_empty() {
        Ok(DkimIn::default())
    } else {
        body::<DkimIn>(&b)
    };
    let call = input.map(|d| ApiCall::GenerateDkimKey {
        domain,
        selector: d.selector,
        algorithm: d.algorithm.unwrap_or_else(|| "ed25519".into()),
    });
    dispatch(&s, p, &h, true, call).await
}

async fn dns(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(domain): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::DnsRecords { domain })).await
}

async fn accounts_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListAccounts {
        domain: q.get("domain").cloned(),
        page: Some(page),
    });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

async fn accounts_add(State(s): State<HttpState>, p: Peer, h: HeaderMap, b: Bytes) -> Response {
    let call = body::<AccountIn>(&b).map(|a| ApiCall::AddAccount {
        address: a.address,
        password: a.password,
        quota: a.quota.map(SizeInput::text),
    });
    dispatch(&s, p, &h, true, call).await
}

async fn accounts_get(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::GetAccount { address })).await
}

async fn accounts_delete(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    dispatch(&s, p, &h, true, Ok(ApiCall::DeleteAccount { address })).await
}

async fn accounts_password(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    b: Bytes,
) -> Response {
    let call = body::<PasswordIn>(&b).map(|x| ApiCall::SetPassword {
        address,
        password: x.password,
    });
    dispatch(&s, p, &h, true, call).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppPasswordIn {
    label: String,
}

async fn app_passwords_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::ListAppPasswords { address })).await
}

async fn app_passwords_create(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    b: Bytes,
) -> Response {
    let call = body::<AppPasswordIn>(&b).map(|x| ApiCall::CreateAppPassword {
        address,
        label: x.label,
    });
    dispatch(&s, p, &h, true, call).await
}

async fn app_passwords_revoke(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, id)): Path<(String, String)>,
) -> Response {
    let call = id
        .parse::<i64>()
        .map(|id| ApiCall::RevokeAppPassword { address, id })
        .map_err(|_| ApiError::invalid(format!("{id:?} is not an app password id")));
    dispatch(&s, p, &h, true, call).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpamListIn {
    /// `allow` or `block`.
    list: String,
}

async fn spam_lists_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListSpamLists {
        scope: q.get("scope").cloned(),
        page: Some(page),
    });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

async fn spam_list_put(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((scope, entry)): Path<(String, String)>,
    b: Bytes,
) -> Response {
    let call = body::<SpamListIn>(&b).and_then(|x| {
        let allow = match x.list.as_str() {
            "allow" => true,
            "block" => false,
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown list {other:?}: allow or block"
                )));
            }
        };
        Ok(ApiCall::PutSpamListEntry {
            scope,
            entry,
            allow,
        })
    });
    dispatch(&s, p, &h, true, call).await
}

async fn spam_list_delete(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((scope, entry)): Path<(String, String)>,
) -> Response {
    dispatch(
        &s,
        p,
        &h,
        true,
        Ok(ApiCall::DeleteSpamListEntry { scope, entry }),
    )
    .await
}

async fn rules_get(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::GetRules { address })).await
}

async fn vacation_set(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    b: Bytes,
) -> Response {
    let call = body::<VacationInput>(&b).map(|v| ApiCall::SetVacation {
        address,
        vacation: Some(v),
    });
    dispatch(&s, p, &h, true, call).await
}

async fn vacation_clear(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let call = ApiCall::SetVacation {
        address,
        vacation: None,
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn forward_set(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    b: Bytes,
) -> Response {
    let call = body::<ForwardInput>(&b).map(|f| ApiCall::SetForward {
        address,
        forward: Some(f),
    });
    dispatch(&s, p, &h, true, call).await
}

async fn forward_clear(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let call = ApiCall::SetForward {
        address,
        forward: None,
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn accounts_quota_get(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::GetQuota { address })).await
}

async fn accounts_quota_set(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    b: Bytes,
) -> Response {
    let call = body::<QuotaIn>(&b).map(|x| ApiCall::SetQuota {
        address,
        quota: x.quota.text(),
    });
    dispatch(&s, p, &h, true, call).await
}

async fn accounts_disable(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let call = ApiCall::SetDisabled {
        address,
        disabled: true,
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn accounts_enable(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let call = ApiCall::SetDisabled {
        address,
        disabled: false,
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn aliases_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListAliases { page: Some(page) });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

async fn aliases_add(State(s): State<HttpState>, p: Peer, h: HeaderMap, b: Bytes) -> Response {
    let call = body::<AliasIn>(&b).map(|a| ApiCall::AddAlias {
        address: a.address,
        target: a.target,
    });
    dispatch(&s, p, &h, true, call).await
}

async fn aliases_delete(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    Query(q): Q,
) -> Response {
    let call = ApiCall::DeleteAlias {
        address,
        target: q.get("target").cloned(),
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn queue_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListQueue { page: Some(page) });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

async fn queue_get(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::GetQueueEntry { id })).await
}

async fn queue_retry(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    dispatch(&s, p, &h, true, Ok(ApiCall::RetryQueue { id: Some(id) })).await
}

async fn queue_retry_all(State(s): State<HttpState>, p: Peer, h: HeaderMap) -> Response {
    dispatch(&s, p, &h, true, Ok(ApiCall::RetryQueue { id: None })).await
}

async fn queue_drop(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    dispatch(&s, p, &h, true, Ok(ApiCall::DropQueueEntry { id })).await
}

async fn reports_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListReports {
        account: q.get("account").cloned(),
        page: Some(page),
    });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

async fn reports_get(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let call = ApiCall::GetReport {
        id,
        account: q.get("account").cloned(),
    };
    dispatch(&s, p, &h, false, Ok(call)).await
}

/// Largest Sieve script body read: the store's own bound; the configured (smaller) one is the
/// backend's to apply, with ManageSieve's message.
const MAX_SCRIPT_BODY: usize = 1 << 20;

async fn sieve_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    dispatch(&s, p, &h, false, Ok(ApiCall::ListSieveScripts { address })).await
}

async fn sieve_get(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, name)): Path<(String, String)>,
) -> Response {
    dispatch(
        &s,
        p,
        &h,
        false,
        Ok(ApiCall::GetSieveScript { address, name }),
    )
    .await
}

async fn sieve_get_deactivate(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let name = "deactivate".to_string();
    sieve_get(State(s), p, h, Path((address, name))).await
}

/// Authenticates before reading the script, so that only an allowed caller makes us read up
/// to a megabyte.
async fn sieve_put(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, name)): Path<(String, String)>,
    body: axum::body::Body,
) -> Response {
    let (api, ip, who) = match admitted(&s, p, &h, true).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let script = match RequestBody(body).read_capped(MAX_SCRIPT_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let script = match String::from_utf8(script) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let mut err = ApiError::invalid("the script is not valid UTF-8");
            err.location = Some((
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            ));
            return error_response(&err);
        }
    };
    let call = ApiCall::PutSieveScript {
        address,
        name,
        script,
    };
    tracing::info!(%ip, caller = who, call = ?redacted(&call), "api: change");
    respond(api.call(call).await, None)
}

async fn sieve_put_deactivate(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    body: axum::body::Body,
) -> Response {
    let name = "deactivate".to_string();
    sieve_put(State(s), p, h, Path((address, name)), body).await
}

async fn sieve_delete(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, name)): Path<(String, String)>,
) -> Response {
    dispatch(
        &s,
        p,
        &h,
        true,
        Ok(ApiCall::DeleteSieveScript { address, name }),
    )
    .await
}

async fn sieve_delete_deactivate(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let name = "deactivate".to_string();
    sieve_delete(State(s), p, h, Path((address, name))).await
}

async fn sieve_activate(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, name)): Path<(String, String)>,
) -> Response {
    let call = ApiCall::ActivateSieveScript {
        address,
        name: Some(name),
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn sieve_deactivate(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let call = ApiCall::ActivateSieveScript {
        address,
        name: None,
    };
    dispatch(&s, p, &h, true, Ok(call)).await
}

async fn mailboxes_list(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    uri: Uri,
    Path(address): Path<String>,
    Query(q): Q,
) -> Response {
    let call = page(&q).map(|page| ApiCall::ListMailboxes {
        address,
        page: Some(page),
    });
    dispatch_at(&s, p, &h, false, call, Some(&uri)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MailboxIn {
    name: String,
    /// An RFC 6154 attribute such as `\\Archive` (the backslash optional).
    special_use: Option<String>,
    /// Subscribe the new mailbox (default true: many clients show subscribed ones only).
    subscribe: Option<bool>,
}

async fn mailboxes_create(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    b: Bytes,
) -> Response {
    let call = body::<MailboxIn>(&b).map(|m| ApiCall::CreateMailbox {
        address,
        name: m.name,
        special_use: m.special_use,
        subscribe: m.subscribe.unwrap_or(true),
    });
    dispatch(&s, p, &h, true, call).await
}

async fn mailboxes_delete(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, name)): Path<(String, String)>,
) -> Response {
    dispatch(
        &s,
        p,
        &h,
        true,
        Ok(ApiCall::DeleteMailbox { address, name }),
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameIn {
    to: String,
}

async fn mailboxes_rename(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path((address, name)): Path<(String, String)>,
    b: Bytes,
) -> Response {
    let call = body::<RenameIn>(&b).map(|r| ApiCall::RenameMailbox {
        address,
        name,
        to: r.to,
    });
    dispatch(&s, p, &h, true, call).await
}

/// Authenticates, then hands the body over unread: the backend streams it through the importer
/// and applies the size cap as it goes.
async fn import(
    State(s): State<HttpState>,
    p: Peer,
    h: HeaderMap,
    Path(address): Path<String>,
    Query(q): Q,
    body: axum::body::Body,
) -> Response {
    let (api, ip, who) = match admitted(&s, p, &h, true).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let media = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match media.as_str() {
        "application/mbox" => ImportFormat::Mbox,
        "message/rfc822" => ImportFormat::Message,
        _ => {
            return error_response(&ApiError::new(
                415,
                "unsupported_media_type",
                "send an mbox as application/mbox or one message as message/rfc822",
            ));
        }
    };
    let input = ImportInput {
        address,
        mailbox: q.get("mailbox").cloned(),
        format,
    };
    tracing::info!(%ip, caller = who, input = ?input, "api: import");
    respond(api.import(input, RequestBody(body)).await, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let key = vec!["example.org".to_string(), "ünï/cøde\"".to_string()];
        let c = encode_cursor(&key);
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_cursor(&c), Some(key));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(""), None);
        assert_eq!(decode_cursor(&encode_cursor(&[])), None);
        assert_eq!(decode_cursor(&encode_cursor(&["a\0b".to_string()])), None);
        let mut q = HashMap::new();
        assert_eq!(page(&q).unwrap().limit, DEFAULT_PAGE_LIMIT);
        for bad in ["0", "1001", "x", "-1"] {
            q.insert("limit".to_string(), bad.to_string());
            assert_eq!(page(&q).unwrap_err().status, 422, "{bad}");
        }
        q.insert("limit".to_string(), "1000".to_string());
        q.insert("after".to_string(), "e30".to_string()); // "{}": not an array
        assert_eq!(page(&q).unwrap_err().status, 422);
    }

    #[test]
    fn next_link_keeps_the_query_and_replaces_the_cursor() {
        let uri: Uri = "/accounts?domain=a.org&after=old&limit=2".parse().unwrap();
        let link = next_link(&uri, &["k".to_string()]);
        assert_eq!(
            link,
            format!(
                "</api/v1/accounts?domain=a.org&limit=2&after={}>; rel=\"next\"",
                encode_cursor(&["k".to_string()])
            )
        );
    }

    /// The OpenAPI document names exactly the routes the router serves.
    #[test]
    fn openapi_describes_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        let mut routed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), format!("/api/v1{p}")))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }

    #[test]
    fn credentials_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer wharf_abc".parse().unwrap());
        assert!(matches!(credentials(&h), Some(Credentials::Bearer(t)) if t == "wharf_abc"));
        h.insert(header::AUTHORIZATION, "Basic YTpiOmM=".parse().unwrap());
        assert!(
            matches!(credentials(&h), Some(Credentials::Basic(u, p)) if u == "a" && p == "b:c")
        );
        h.insert(header::AUTHORIZATION, "Digest x".parse().unwrap());
        assert!(credentials(&h).is_none());
    }
}
