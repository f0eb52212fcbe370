//! The web admin and self-service pages under `/web` (docs/api.md, "Web pages"): server-rendered
//! HTML with one embedded style sheet and no scripts. Every page runs the same operations as the
//! REST API and the CLI, through the binary's [`AdminApi`](crate::AdminApi); this module only
//! signs in, guards and renders.
//!
//! Security: the pages are served only where credentials may travel (`routes::confidential`:
//! https, loopback, or a trusted proxy saying https); sign-in takes the account password itself
//! (never an app password), checked and throttled by the directory like an IMAP login; the
//! session lives in this process's memory behind a `__Host-` cookie that is `Secure`,
//! `HttpOnly` and `SameSite=Strict`; every POST carries a per-session CSRF token (the sign-in
//! form a per-visit one, double-submitted in a cookie), and a POST without the right one is
//! refused with 403; a Content-Security-Policy forbids scripts and framing.

mod html;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::api::{ApiCall, ApiReply, ForwardInput, VacationInput};
use crate::routes::{HttpState, client_ip};
use html::{button, csrf_field, esc, flag, list, seg, t, text};

const STYLE: &str = include_str!("style.css");
/// `__Host-`: the browser keeps it only when Secure, for this host, with `Path=/`.
const SESSION_COOKIE: &str = "__Host-wharf_session";
/// The sign-in form's double-submitted CSRF token.
const LOGIN_COOKIE: &str = "__Host-wharf_login";
/// A session unused this long ends.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// And every session ends after this, used or not.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 10_000;
/// Most sessions one account may hold; signing in again past it ends that account's oldest.
const MAX_PER_ACCOUNT: usize = 16;
/// A flash (and the new app password it may carry) is dropped when not shown within this.
const FLASH_TTL: Duration = Duration::from_secs(120);

/// Signed-in browsers of this process (a restart signs everyone out; with several nodes behind
/// a balancer, the web pages need sticky sessions).
#[derive(Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

struct Session {
    /// The account's id when signed in: an address deleted and created again is another
    /// account, and does not inherit the session.
    account: i64,
    /// [`stamp`] of the account when signed in: a password set by anyone, anywhere (the CLI
    /// too), or the address deleted and created again (SQLite may even reuse the id), ends
    /// the session.
    stamp: String,
    address: String,
    csrf: String,
    created: Instant,
    seen: Instant,
    /// The flash and when it was left.
    flash: Option<(Flash, Instant)>,
}

/// A live session's view: account id, address, CSRF token and the flash taken.
pub(crate) struct SessionView {
    account: i64,
    stamp: String,
    address: String,
    csrf: String,
    flash: Option<Flash>,
}

/// A message for the next page shown (after a POST's redirect).
#[derive(Clone)]
struct Flash {
    ok: bool,
    text: String,
    /// A new app password, shown once.
    secret: Option<String>,
}

impl Flash {
    fn ok(text: impl Into<String>) -> Flash {
        Flash {
            ok: true,
            text: text.into(),
            secret: None,
        }
    }
    fn err(text: impl Into<String>) -> Flash {
        Flash {
            ok: false,
            text: text.into(),
            secret: None,
        }
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session of `account`: (session id, CSRF token). Never refused: expired sessions
    /// are swept first, the account's oldest goes past [`MAX_PER_ACCOUNT`], and with the
    /// table full the least recently seen session of anyone ends (so that no user can fill
    /// the table and lock the administrators out).
    fn create(&self, account: i64, stamp: &str, address: &str) -> (String, String) {
        self.create_at(
            Instant::now(),
            account,
            stamp,
            address,
            MAX_SESSIONS,
            MAX_PER_ACCOUNT,
        )
    }

    fn create_at(
        &self,
        now: Instant,
        account: i64,
        stamp: &str,
        address: &str,
        max_total: usize,
        max_per_account: usize,
    ) -> (String, String) {
        let mut map = self.lock();
        map.retain(|_, s| live(s, now));
        loop {
            let mine = map.iter().filter(|(_, s)| s.account == account);
            if mine.clone().count() < max_per_account.max(1) {
                break;
            }
            let Some(oldest) = mine.min_by_key(|(_, s)| s.created).map(|(k, _)| k.clone()) else {
                break;
            };
            map.remove(&oldest);
        }
        while map.len() >= max_total.max(1) {
            let Some(stalest) = map
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&stalest);
        }
        let sid = random_token();
        let csrf = random_token();
        map.insert(
            sid.clone(),
            Session {
                account,
                stamp: stamp.to_string(),
                address: address.to_string(),
                csrf: csrf.clone(),
                created: now,
                seen: now,
                flash: None,
            },
        );
        (sid, csrf)
    }

    /// The live session `sid` names, its flash taken when `take_flash` (and dropped when
    /// older than [`FLASH_TTL`]).
    fn get(&self, sid: &str, take_flash: bool) -> Option<SessionView> {
        self.get_at(Instant::now(), sid, take_flash)
    }

    fn get_at(&self, now: Instant, sid: &str, take_flash: bool) -> Option<SessionView> {
        if sid.is_empty() {
            return None;
        }
        let mut map = self.lock();
        let s = map.get_mut(sid)?;
        if !live(s, now) {
            map.remove(sid);
            return None;
        }
        s.seen = now;
        if s.flash
            .as_ref()
            .is_some_and(|(_, at)| now.duration_since(*at) >= FLASH_TTL)
        {
            s.flash = None;
        }
        let flash = if take_flash {
            s.flash.take().map(|(f, _)| f)
        } else {
            None
        };
        Some(SessionView {
            account: s.account,
            stamp: s.stamp.clone(),
            address: s.address.clone(),
            csrf: s.csrf.clone(),
            flash,
        })
    }

    fn flash(&self, sid: &str, flash: Flash) {
        if let Some(s) = self.lock().get_mut(sid) {
            s.flash = Some((flash, Instant::now()));
        }
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    /// The session's account changed its own password in it: the session stays valid.
    fn restamp(&self, sid: &str, stamp: &str) {
        if let Some(s) = self.lock().get_mut(sid) {
            s.stamp = stamp.to_string();
        }
    }

    /// Ends every session of `address` (an admin reset its password, disabled or deleted it).
    pub(crate) fn remove_for(&self, address: &str) -> usize {
        self.remove_others(address, "")
    }

    /// Ends every session of `address` but `keep` (the user changed their own password).
    pub(crate) fn remove_others(&self, address: &str, keep: &str) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|sid, s| {
            !s.address.eq_ignore_ascii_case(address) || (!keep.is_empty() && sid == keep)
        });
        before - map.len()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// After a successful call: an admin's password reset, disabling or deletion ends the
/// account's web sessions (the pages also re-check the account on every request).
pub(crate) fn after_call(sessions: &Sessions, call: &ApiCall) {
    let address = match call {
        ApiCall::SetPassword { address, .. }
        | ApiCall::DeleteAccount { address }
        | ApiCall::SetDisabled {
            address,
            disabled: true,
        } => address.trim(),
        _ => return,
    };
    let ended = sessions.remove_for(address);
    if ended > 0 {
        tracing::info!(account = address, ended, "web: sessions ended");
    }
}

/// What a session remembers of its account's credentials: a digest of the password hash
/// (salted, so new with every password set and every account created).
fn stamp(secret_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret_hash.as_bytes()))
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < LIFETIME
}

fn random_token() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Constant-time comparison of two tokens; an empty token matches nothing.
fn same(a: &str, b: &str) -> bool {
    !a.is_empty()
        && a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}")
}

type Form = HashMap<String, String>;

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An `application/x-www-form-urlencoded` body (anything else reads as an empty form).
fn parse_form(body: &Bytes) -> Form {
    let Ok(s) = std::str::from_utf8(body) else {
        return Form::new();
    };
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), String::new()),
        })
        .collect()
}

fn field<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).map_or("", |s| s.as_str())
}

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// A signed-in request.
struct Ctx {
    sid: String,
    address: String,
    admin: bool,
    csrf: String,
    flash: Option<Flash>,
}

/// Headers every page carries: no caching, no scripts, no framing.
fn secure_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    secure_headers(&mut r);
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(&mut r);
    r
}

const ADMIN_NAV: &[(&str, &str)] = &[
    ("/web/", "Dashboard"),
    ("/web/domains", "Domains"),
    ("/web/accounts", "Accounts"),
    ("/web/aliases", "Aliases"),
    ("/web/queue", "Queue"),
    ("/web/reports", "Reports"),
    ("/web/me", "My account"),
];

/// The page frame: header with navigation, the flash, then `body`.
fn frame(title: &str, ctx: Option<&Ctx>, active: &str, body: &str) -> String {
    let mut nav = String::new();
    let mut who = String::new();
    let mut flash = String::new();
    if let Some(c) = ctx {
        let items: &[(&str, &str)] = if c.admin {
            ADMIN_NAV
        } else {
            &[("/web/me", "My account")]
        };
        nav.push_str("<nav>");
        for (href, label) in items {
            let on = if *href == active { " class=\"on\"" } else { "" };
            nav.push_str(&format!("<a href=\"{href}\"{on}>{label}</a>"));
        }
        nav.push_str("</nav>");
        who = format!(
            "<span class=\"who\">{} {}</span>",
            esc(&c.address),
            button("/web/logout", &c.csrf, "Sign out", "")
        );
        if let Some(f) = &c.flash {
            let class = if f.ok { "ok" } else { "err" };
            flash = format!(
                "<div class=\"flash {class}\" role=\"status\">{}",
                esc(&f.text)
            );
            if let Some(secret) = &f.secret {
                flash.push_str(&format!(
                    "<p>Give this password to the device now; it is not shown again:</p><p><span class=\"secret\" id=\"app-password\">{}</span></p>",
                    esc(secret)
                ));
            }
            flash.push_str("</div>");
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Wharf</title><link rel=\"stylesheet\" href=\"/web/style.css\"></head><body><header><span class=\"brand\">Wharf</span>{nav}{who}</header><main>{flash}<h1>{}</h1>{body}</main></body></html>\n",
        esc(title),
        esc(title)
    )
}

fn page(title: &str, ctx: &Ctx, active: &str, body: &str) -> Response {
    html_response(StatusCode::OK, frame(title, Some(ctx), active, body))
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<section><p>{}</p><p><a href=\"/web/\">Back</a></p></section>",
        esc(message)
    );
    html_response(
        status,
        frame(
            status.canonical_reason().unwrap_or("Error"),
            None,
            "",
            &body,
        ),
    )
}

/// Refuses every page where credentials could travel in the clear.
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
        return error_page(
            StatusCode::FORBIDDEN,
            "These pages take passwords: open them over https.",
        );
    }
    if state.admin_api().is_none() {
        return error_page(StatusCode::NOT_FOUND, "The web pages are not enabled.");
    }
    next.run(req).await
}

pub(crate) fn router(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/web", get(|| async { redirect("/web/") }))
        .route("/web/", get(dashboard))
        .route("/web/style.css", get(style))
        .route("/web/login", get(login_form).post(login))
        .route("/web/logout", post(logout))
        .route("/web/domains", get(domains).post(domain_add))
        .route("/web/domains/{name}", get(domain_page))
        .route("/web/domains/{name}/delete", post(domain_delete))
        .route("/web/domains/{name}/dkim", post(dkim_generate))
        .route("/web/accounts", get(accounts).post(account_add))
        .route("/web/accounts/{address}/{action}", post(account_action))
        .route("/web/aliases", get(aliases).post(alias_add))
        .route("/web/aliases/delete", post(alias_delete))
        .route("/web/queue", get(queue))
        .route("/web/queue/retry", post(queue_retry_all))
        .route("/web/queue/{id}/{action}", post(queue_action))
        .route("/web/reports", get(reports))
        .route("/web/reports/{id}", get(report_page))
        .route("/web/me", get(me))
        .route("/web/me/password", post(me_password))
        .route("/web/me/app-passwords", post(app_password_create))
        .route(
            "/web/me/app-passwords/{id}/revoke",
            post(app_password_revoke),
        )
        .route("/web/me/junk-lists", post(junk_add))
        .route("/web/me/junk-lists/remove", post(junk_remove))
        .route("/web/me/vacation", post(me_vacation))
        .route("/web/me/forward", post(me_forward))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            require_confidential,
        ))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// The signed-in session of a request, if any. The account is loaded on every request: a
/// session ends once its account is disabled, deleted (even if the address is created again)
/// or no longer found, and a demoted admin loses the admin pages at once.
async fn session(state: &HttpState, headers: &HeaderMap, take_flash: bool) -> Option<Ctx> {
    let sid = cookie(headers, SESSION_COOKIE)?;
    let view = state.web_sessions().get(&sid, take_flash)?;
    let api = state.admin_api()?;
    let account = match state.directory().account(&view.address).await {
        Ok(Some(a))
            if a.id == view.account && !a.disabled && same(&stamp(&a.secret_hash), &view.stamp) =>
        {
            a
        }
        Ok(found) => {
            tracing::info!(
                account = view.address,
                disabled = found.as_ref().is_some_and(|a| a.disabled),
                "web: session's account disabled or gone"
            );
            state.web_sessions().remove(&sid);
            return None;
        }
        Err(e) => {
            tracing::warn!(account = view.address, error = %e, "web: session check failed");
            return None;
        }
    };
    let admin = match api.is_admin(&account.address).await {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(
                account = view.address,
                error = e.message,
                "web: session account gone"
            );
            state.web_sessions().remove(&sid);
            return None;
        }
    };
    Some(Ctx {
        sid,
        address: view.address,
        admin,
        csrf: view.csrf,
        flash: view.flash,
    })
}

/// A page view: the session, or the redirect to sign in (or a 403 for a non-admin on an
/// admin page).
async fn view(state: &HttpState, headers: &HeaderMap, admin: bool) -> Result<Ctx, Response> {
    let Some(ctx) = session(state, headers, true).await else {
        return Err(redirect("/web/login"));
    };
    if admin && !ctx.admin {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This page is for administrators.",
        ));
    }
    Ok(ctx)
}

/// A form post: the session and its CSRF token must match (403 otherwise).
async fn guard_post(
    state: &HttpState,
    headers: &HeaderMap,
    form: &Form,
    admin: bool,
) -> Result<Ctx, Response> {
    let Some(ctx) = session(state, headers, false).await else {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Your session has ended: sign in again.",
        ));
    };
    if !same(field(form, "csrf"), &ctx.csrf) {
        tracing::info!(
            account = ctx.address,
            "web: form post without a valid CSRF token"
        );
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or wrong: reload the page and try again.",
        ));
    }
    if admin && !ctx.admin {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This action is for administrators.",
        ));
    }
    Ok(ctx)
}

/// Runs an operation for a page; its error message otherwise.
async fn fetch(state: &HttpState, call: ApiCall) -> Result<Value, String> {
    let Some(api) = state.admin_api() else {
        return Err("the web pages are not enabled".into());
    };
    match api.call(call).await {
        Ok(ApiReply::Ok(v)) | Ok(ApiReply::Created(v)) => Ok(v),
        Ok(ApiReply::Page { items, .. }) => Ok(items),
        Ok(ApiReply::Text(t)) => Ok(Value::String(t)),
        Ok(ApiReply::NoContent) => Ok(Value::Null),
        Err(e) => Err(e.message),
    }
}

/// The common shape of a form post: guard, build the call, run it, leave a flash, go `back`.
#[allow(clippy::too_many_arguments)]
async fn act<F, M>(
    state: &HttpState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
    admin: bool,
    back: &str,
    make: F,
    done: M,
) -> Response
where
    F: FnOnce(&Ctx, &Form) -> Result<ApiCall, String>,
    M: FnOnce(&Value) -> Flash,
{
    let form = parse_form(body);
    let ctx = match guard_post(state, headers, &form, admin).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let flash = match make(&ctx, &form) {
        Err(message) => Flash::err(message),
        Ok(call) => {
            let ip = client_ip(state, peer.map(|c| c.0.0), headers);
            tracing::info!(%ip, caller = ctx.address, call = ?crate::api::redacted(&call), "web: change");
            let effect = call.clone();
            match fetch(state, call).await {
                Ok(v) => {
                    match &effect {
                        // An admin setting their own password here stays signed in in this
                        // browser (the others end).
                        ApiCall::SetPassword { address, .. }
                            if address.trim().eq_ignore_ascii_case(&ctx.address) =>
                        {
                            let sessions = state.web_sessions();
                            match state.directory().account(&ctx.address).await {
                                Ok(Some(a)) => sessions.restamp(&ctx.sid, &stamp(&a.secret_hash)),
                                _ => sessions.remove(&ctx.sid),
                            }
                            sessions.remove_others(&ctx.address, &ctx.sid);
                        }
                        _ => after_call(state.web_sessions(), &effect),
                    }
                    done(&v)
                }
                Err(message) => Flash::err(message),
            }
        }
    };
    state.web_sessions().flash(&ctx.sid, flash);
    redirect(back)
}

// ------------------------------------------------------------------ sign in

fn login_page(status: StatusCode, token: &str, user: &str, message: Option<&str>) -> Response {
    let message = message.map_or(String::new(), |m| {
        format!("<div class=\"flash err\" role=\"alert\">{}</div>", esc(m))
    });
    let body = format!(
        "<section class=\"login\">{message}<form method=\"post\" action=\"/web/login\">{}<label for=\"username\">Email address</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" value=\"{}\" required autofocus><label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required><button type=\"submit\" id=\"sign-in\">Sign in</button></form><p class=\"muted\">Use your account password, not an app password.</p></section>",
        csrf_field(token),
        esc(user)
    );
    let mut r = html_response(status, frame("Sign in", None, "", &body));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LOGIN_COOKIE, token, Some(3600))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_form(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if session(&state, &headers, false).await.is_some() {
        return redirect("/web/");
    }
    login_page(StatusCode::OK, &random_token(), "", None)
}

async fn login(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use wharf_directory::AuthError;
    let form = parse_form(&body);
    // Login CSRF: the form's token must be the one in this browser's cookie.
    let Some(expected) = cookie(&headers, LOGIN_COOKIE) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-in form's security token is missing: open the sign-in page again.",
        );
    };
    if !same(field(&form, "csrf"), &expected) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-in form's security token is wrong: open the sign-in page again.",
        );
    }
    let user = field(&form, "username").trim().to_string();
    let pass = field(&form, "password");
    let ip = client_ip(&state, peer.map(|c| c.0.0), &headers);
    let token = random_token();
    let account = match state
        .directory()
        .authenticate_account_password(&user, pass, ip)
        .await
    {
        Ok(a) => a,
        Err(AuthError::Throttled { retry_after }) => {
            let mut r = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &token,
                &user,
                Some(&format!(
                    "Too many failed attempts: try again in {} seconds.",
                    retry_after.as_secs().max(1)
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(AuthError::Temporary(e)) => {
            tracing::warn!(error = %e, "web: authentication unavailable");
            return login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &token,
                &user,
                Some("Sign-in is unavailable for a moment; try again."),
            );
        }
        Err(e) => {
            tracing::info!(%ip, %user, error = ?e, "web: sign-in failed");
            // 200 with the error on the form: a 401 would need a WWW-Authenticate challenge,
            // and this is no HTTP authentication.
            return login_page(
                StatusCode::OK,
                &token,
                &user,
                Some("Wrong email address or password."),
            );
        }
    };
    let admin = match state.admin_api() {
        Some(api) => api.is_admin(&account.address).await.unwrap_or(false),
        None => false,
    };
    let (sid, _) =
        state
            .web_sessions()
            .create(account.id, &stamp(&account.secret_hash), &account.address);
    tracing::info!(%ip, account = account.address, admin, "web: signed in");
    let mut r = redirect(if admin { "/web/" } else { "/web/me" });
    for c in [
        set_cookie(SESSION_COOKIE, &sid, None),
        set_cookie(LOGIN_COOKIE, "", Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn logout(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let ctx = match guard_post(&state, &headers, &form, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    state.web_sessions().remove(&ctx.sid);
    let mut r = redirect("/web/login");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", Some(0))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

// ------------------------------------------------------------------ dashboard

/// Sums of the Prometheus counters the dashboard shows: (messages delivered, deferred,
/// bounced, failed authentications) since this process started.
fn counters(metrics: &str) -> [u64; 4] {
    let mut out = [0u64; 4];
    for line in metrics.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let name = name_labels.split('{').next().unwrap_or("");
        let slot = match name {
            "wharf_messages_delivered_total" => 0,
            "wharf_messages_deferred_total" => 1,
            "wharf_messages_bounced_total" => 2,
            "wharf_auth_total" if !name_labels.contains("result=\"success\"") => 3,
            _ => continue,
        };
        out[slot] += v.max(0.0) as u64;
    }
    out
}

fn card(n: &str, label: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"n\">{}</div><div class=\"l\">{}</div></div>",
        esc(n),
        esc(label)
    )
}

async fn dashboard(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match session(&state, &headers, true).await {
        Some(c) if !c.admin => return redirect("/web/me"),
        Some(c) => c,
        None => return redirect("/web/login"),
    };
    let d = match fetch(&state, ApiCall::Dashboard).await {
        Ok(d) => d,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let q = &d["queue"];
    let mut body = String::from("<div class=\"cards\" id=\"summary\">");
    body.push_str(&card(&text(q, "entries"), "messages in the queue"));
    body.push_str(&card(&text(q, "deferred"), "of them retrying"));
    body.push_str(&card(&text(&d, "domains"), "domains"));
    body.push_str(&card(&text(&d, "accounts"), "accounts"));
    match state.metrics_text() {
        Some(m) => {
            let [delivered, deferred, bounced, auth_failed] = counters(&m);
            body.push_str(&card(&delivered.to_string(), "deliveries since start"));
            body.push_str(&card(
                &format!("{deferred} / {bounced}"),
                "deferrals / bounces since start",
            ));
            body.push_str(&card(&auth_failed.to_string(), "failed logins since start"));
        }
        None => body.push_str(&card(
            "–",
            "deliveries and login failures: [http] metrics is off",
        )),
    }
    body.push_str("</div>");
    let c = &d["certificate"];
    body.push_str("<h2>Certificate</h2><section id=\"certificate\">");
    if c.is_object() {
        let days = c.get("days_left").and_then(Value::as_i64).unwrap_or(0);
        let class = if days < 7 {
            "bad-t"
        } else if days < 21 {
            "warn-t"
        } else {
            "ok-t"
        };
        body.push_str(&format!(
            "<p><span class=\"{class}\">expires {} ({days} days left)</span>; issuer {}{}</p><p class=\"muted\">names: {}</p>",
            t(c, "not_after"),
            t(c, "issuer"),
            if flag(c, "self_signed") {
                " (self-signed: mail clients will warn; enable [acme])"
            } else {
                ""
            },
            esc(&list(&c["names"])
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
        ));
    } else {
        body.push_str(&format!(
            "<p class=\"bad-t\">{}</p>",
            t(&d, "certificate_error")
        ));
    }
    body.push_str("</section><h2>Checks</h2><section id=\"checks\"><table><tr><th>Check</th><th>Status</th><th>Detail</th></tr>");
    for c in list(&d["checks"]) {
        let status = text(c, "status");
        let class = match status.as_str() {
            "ok" => "ok-t",
            "warn" => "warn-t",
            _ => "bad-t",
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            t(c, "name"),
            esc(&status),
            t(c, "message")
        ));
    }
    body.push_str("</table><p class=\"muted\">DNS records, reverse DNS and reachable ports are checked from outside by <code>wharf doctor</code>.</p></section>");
    page("Dashboard", &ctx, "/web/", &body)
}

// ------------------------------------------------------------------ domains

async fn domains(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = String::new();
    body.push_str(&format!(
        "<section><form method=\"post\" action=\"/web/domains\" class=\"row\">{}<div><label for=\"name\">New domain</label><input type=\"text\" id=\"name\" name=\"name\" placeholder=\"example.com\" required></div><div><button type=\"submit\">Add domain</button></div></form></section>",
        csrf_field(&ctx.csrf)
    ));
    match fetch(&state, ApiCall::ListDomains { page: None }).await {
        Ok(v) => {
            body.push_str("<table id=\"domains\"><tr><th>Domain</th><th></th></tr>");
            for d in list(&v) {
                let name = text(d, "name");
                body.push_str(&format!(
                    "<tr><td><a href=\"/web/domains/{}\">{}</a></td><td>{}</td></tr>",
                    seg(&name),
                    esc(&name),
                    button(
                        &format!("/web/domains/{}/delete", seg(&name)),
                        &ctx.csrf,
                        "Delete",
                        "danger"
                    )
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    page("Domains", &ctx, "/web/domains", &body)
}

async fn domain_add(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/domains",
        |_, f| {
            Ok(ApiCall::AddDomain {
                name: field(f, "name").to_string(),
            })
        },
        |v| Flash::ok(format!("Domain {} added.", text(v, "name"))),
    )
    .await
}

async fn domain_delete(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let done = format!("Domain {name} deleted.");
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/domains",
        |_, _| Ok(ApiCall::DeleteDomain { name }),
        |_| Flash::ok(done),
    )
    .await
}

async fn dkim_generate(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/web/domains/{}", seg(&domain));
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        &back,
        |_, f| {
            let algorithm = match field(f, "algorithm") {
                "" => "ed25519",
                a => a,
            };
            Ok(ApiCall::GenerateDkimKey {
                domain,
                selector: None,
                algorithm: algorithm.to_string(),
            })
        },
        |v| {
            Flash::ok(format!(
                "DKIM key {} created: publish its record below.",
                text(v, "selector")
            ))
        },
    )
    .await
}

async fn domain_page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = String::new();
    match fetch(
        &state,
        ApiCall::DnsRecords {
            domain: name.clone(),
        },
    )
    .await
    {
        Ok(v) => {
            let records: Vec<&str> = list(&v["records"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            body.push_str(&format!(
                "<h2>DNS records to publish</h2><p class=\"muted\">Copy these into the zone of {}.</p><pre class=\"copy\" id=\"dns-records\">{}</pre>",
                t(&v, "domain"),
                esc(&records.join("\n"))
            ));
            for n in list(&v["notes"]).iter().filter_map(Value::as_str) {
                body.push_str(&format!("<p class=\"muted\">{}</p>", esc(n)));
            }
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    body.push_str("<h2>DKIM keys</h2>");
    if let Ok(v) = fetch(
        &state,
        ApiCall::ListDkimKeys {
            domain: name.clone(),
        },
    )
    .await
    {
        body.push_str("<table><tr><th>Selector</th><th>Algorithm</th><th>Record</th></tr>");
        for k in list(&v) {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><pre class=\"copy\">{}</pre></td></tr>",
                t(k, "selector"),
                t(k, "algorithm"),
                t(k, "zone_line")
            ));
        }
        body.push_str("</table>");
    }
    body.push_str(&format!(
        "<section><form method=\"post\" action=\"/web/domains/{}/dkim\" class=\"row\">{}<div><label for=\"algorithm\">New DKIM key</label><select id=\"algorithm\" name=\"algorithm\"><option value=\"ed25519\">Ed25519</option><option value=\"rsa\">RSA 2048</option></select></div><div><button type=\"submit\">Generate</button></div></form></section>",
        seg(&name),
        csrf_field(&ctx.csrf)
    ));
    page(&name, &ctx, "/web/domains", &body)
}

// ------------------------------------------------------------------ accounts

async fn accounts(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = format!(
        "<section><form method=\"post\" action=\"/web/accounts\" class=\"row\" id=\"add-account\">{}<div><label for=\"address\">Email address</label><input type=\"email\" id=\"address\" name=\"address\" required></div><div><label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" required></div><div><label for=\"quota\">Quota</label><input type=\"text\" id=\"quota\" name=\"quota\" placeholder=\"e.g. 2G (empty: unlimited)\"></div><div><button type=\"submit\" id=\"add-account-submit\">Add account</button></div></form></section>",
        csrf_field(&ctx.csrf)
    );
    match fetch(
        &state,
        ApiCall::ListAccounts {
            domain: None,
            page: None,
        },
    )
    .await
    {
        Ok(v) => {
            body.push_str("<table id=\"accounts\"><tr><th>Account</th><th>Role</th><th>State</th><th>Used / quota</th><th>App passwords</th><th>Password</th><th></th></tr>");
            for a in list(&v) {
                let address = text(a, "address");
                let base = format!("/web/accounts/{}", seg(&address));
                let disabled = flag(a, "disabled");
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td class=\"app-passwords\">{}</td><td><form method=\"post\" action=\"{base}/password\">{}<input type=\"password\" name=\"password\" aria-label=\"new password for {}\" autocomplete=\"new-password\" required> <button class=\"link\">Set</button></form></td><td>{}{}</td></tr>",
                    esc(&address),
                    if flag(a, "admin") { "admin" } else { "user" },
                    if disabled { "<span class=\"bad-t\">disabled</span>" } else { "active" },
                    esc(&text(&a["used"], "human")),
                    esc(&text(&a["quota"], "human")),
                    a.get("app_passwords").and_then(Value::as_u64).unwrap_or(0),
                    csrf_field(&ctx.csrf),
                    esc(&address),
                    if disabled {
                        button(&format!("{base}/enable"), &ctx.csrf, "Enable", "link")
                    } else {
                        button(&format!("{base}/disable"), &ctx.csrf, "Disable", "link")
                    },
                    button(&format!("{base}/delete"), &ctx.csrf, "Delete", "danger"),
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    page("Accounts", &ctx, "/web/accounts", &body)
}

async fn account_add(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/accounts",
        |_, f| {
            let quota = field(f, "quota").trim();
            Ok(ApiCall::AddAccount {
                address: field(f, "address").to_string(),
                password: field(f, "password").to_string(),
                quota: (!quota.is_empty()).then(|| quota.to_string()),
            })
        },
        |v| Flash::ok(format!("Account {} added.", text(v, "address"))),
    )
    .await
}

async fn account_action(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    Path((address, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let done = match action.as_str() {
        "delete" => format!("Account {address} deleted."),
        "disable" => format!("Account {address} disabled."),
        "enable" => format!("Account {address} enabled."),
        "password" => format!("Password of {address} changed; its app passwords are revoked."),
        _ => return error_page(StatusCode::NOT_FOUND, "No such action."),
    };
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/accounts",
        |_, f| {
            Ok(match action.as_str() {
                "delete" => ApiCall::DeleteAccount { address },
                "disable" => ApiCall::SetDisabled {
                    address,
                    disabled: true,
                },
                "enable" => ApiCall::SetDisabled {
                    address,
                    disabled: false,
                },
                _ => ApiCall::SetPassword {
                    address,
                    password: field(f, "password").to_string(),
                },
            })
        },
        |_| Flash::ok(done),
    )
    .await
}

// ------------------------------------------------------------------ aliases

async fn aliases(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = format!(
        "<section><form method=\"post\" action=\"/web/aliases\" class=\"row\">{}<div><label for=\"address\">Alias (or @domain for a catch-all)</label><input type=\"text\" id=\"address\" name=\"address\" required></div><div><label for=\"target\">Delivers to</label><input type=\"text\" id=\"target\" name=\"target\" required></div><div><button type=\"submit\">Add alias</button></div></form></section>",
        csrf_field(&ctx.csrf)
    );
    match fetch(&state, ApiCall::ListAliases { page: None }).await {
        Ok(v) => {
            body.push_str("<table id=\"aliases\"><tr><th>Alias</th><th>Target</th><th></th></tr>");
            for a in list(&v) {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/web/aliases/delete\">{}<input type=\"hidden\" name=\"address\" value=\"{}\"><input type=\"hidden\" name=\"target\" value=\"{}\"><button class=\"danger\">Delete</button></form></td></tr>",
                    t(a, "address"),
                    t(a, "target"),
                    csrf_field(&ctx.csrf),
                    t(a, "address"),
                    t(a, "target")
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    page("Aliases", &ctx, "/web/aliases", &body)
}

async fn alias_add(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/aliases",
        |_, f| {
            Ok(ApiCall::AddAlias {
                address: field(f, "address").to_string(),
                target: field(f, "target").to_string(),
            })
        },
        |v| {
            Flash::ok(format!(
                "Alias {} → {} added.",
                text(v, "address"),
                text(v, "target")
            ))
        },
    )
    .await
}

async fn alias_delete(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/aliases",
        |_, f| {
            let target = field(f, "target");
            Ok(ApiCall::DeleteAlias {
                address: field(f, "address").to_string(),
                target: (!target.is_empty()).then(|| target.to_string()),
            })
        },
        |_| Flash::ok("Alias deleted."),
    )
    .await
}

// ------------------------------------------------------------------ queue

async fn queue(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = String::new();
    match fetch(&state, ApiCall::ListQueue { page: None }).await {
        Ok(v) => {
            let entries = list(&v);
            body.push_str(&format!(
                "<section class=\"row\"><div>{} message(s) waiting.</div><div>{}</div></section>",
                entries.len(),
                button("/web/queue/retry", &ctx.csrf, "Retry all now", "link")
            ));
            body.push_str("<table id=\"queue\"><tr><th>Id</th><th>From</th><th>Recipients</th><th>Size</th><th>Attempts</th><th>Next attempt</th><th></th></tr>");
            for e in entries {
                let id = text(e, "id");
                let mut rcpts = String::new();
                for r in list(&e["recipients"]) {
                    rcpts.push_str(&format!(
                        "<div>{} <span class=\"muted\">{}{}</span></div>",
                        t(r, "address"),
                        t(r, "state"),
                        match text(r, "diagnostic") {
                            d if d.is_empty() => String::new(),
                            d => format!(": {}", esc(&d)),
                        }
                    ));
                }
                let sender = match text(e, "sender") {
                    s if s.is_empty() => "&lt;&gt;".to_string(),
                    s => esc(&s),
                };
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{sender}</td><td>{rcpts}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                    esc(&id),
                    t(e, "size"),
                    t(e, "attempts"),
                    t(e, "next_attempt"),
                    button(&format!("/web/queue/{}/retry", seg(&id)), &ctx.csrf, "Retry", "link"),
                    button(&format!("/web/queue/{}/drop", seg(&id)), &ctx.csrf, "Drop", "danger"),
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    page("Queue", &ctx, "/web/queue", &body)
}

async fn queue_retry_all(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/queue",
        |_, _| Ok(ApiCall::RetryQueue { id: None }),
        |v| Flash::ok(format!("{} message(s) due now.", text(v, "due_now"))),
    )
    .await
}

async fn queue_action(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let done = match action.as_str() {
        "retry" => format!("Message {id} is due now."),
        "drop" => format!("Message {id} dropped."),
        _ => return error_page(StatusCode::NOT_FOUND, "No such action."),
    };
    act(
        &state,
        peer,
        &headers,
        &body,
        true,
        "/web/queue",
        |_, _| {
            Ok(if action == "retry" {
                ApiCall::RetryQueue { id: Some(id) }
            } else {
                ApiCall::DropQueueEntry { id }
            })
        },
        |_| Flash::ok(done),
    )
    .await
}

// ------------------------------------------------------------------ reports

async fn reports(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = String::new();
    match fetch(
        &state,
        ApiCall::ListReports {
            account: None,
            page: None,
        },
    )
    .await
    {
        Ok(v) => {
            body.push_str("<p class=\"muted\">DMARC and TLS reports received by the report address.</p><table id=\"reports\"><tr><th>Kind</th><th>From</th><th>Domain</th><th>Period</th><th>Messages</th><th>Failed</th></tr>");
            for r in list(&v) {
                body.push_str(&format!(
                    "<tr><td>{}</td><td><a href=\"/web/reports/{}\">{}</a></td><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td></tr>",
                    t(r, "kind"),
                    seg(&text(r, "id")),
                    t(r, "org"),
                    t(r, "domain"),
                    t(r, "begin"),
                    t(r, "end"),
                    t(r, "total"),
                    t(r, "failed")
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    page("Reports", &ctx, "/web/reports", &body)
}

async fn report_page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match view(&state, &headers, true).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = String::new();
    match fetch(&state, ApiCall::GetReport { id, account: None }).await {
        Ok(r) => {
            body.push_str(&format!(
                "<section><p>{} report from {} for {}, {} – {}: {} messages, {} failed.</p></section><table><tr><th>Source</th><th>Count</th><th>Disposition</th><th>DKIM</th><th>SPF</th><th>Header From</th></tr>",
                t(&r, "kind"),
                t(&r, "org"),
                t(&r, "domain"),
                t(&r, "begin"),
                t(&r, "end"),
                t(&r, "total"),
                t(&r, "failed")
            ));
            for row in list(&r["rows"]) {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    t(row, "source"),
                    t(row, "count"),
                    t(row, "disposition"),
                    t(row, "dkim"),
                    t(row, "spf"),
                    t(row, "header_from")
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    page("Report", &ctx, "/web/reports", &body)
}

// ------------------------------------------------------------------ self-service

async fn me(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = match view(&state, &headers, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let csrf = csrf_field(&ctx.csrf);
    let mut body = format!(
        "<h2>Password</h2><section><form method=\"post\" action=\"/web/me/password\" class=\"row\" id=\"change-password\">{csrf}<div><label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required></div><div><label for=\"new\">New password</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" required></div><div><label for=\"confirm\">New password again</label><input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" required></div><div><button type=\"submit\">Change password</button></div></form></section>"
    );
    body.push_str("<h2>App passwords</h2><section><p class=\"muted\">One per device or mail program, used in place of your password for IMAP, POP3 and SMTP. Revoke one when the device is gone.</p>");
    match fetch(
        &state,
        ApiCall::ListAppPasswords {
            address: ctx.address.clone(),
        },
    )
    .await
    {
        Ok(v) => {
            body.push_str("<table id=\"app-passwords\"><tr><th>Device</th><th>Created</th><th>Last used</th><th></th></tr>");
            for a in list(&v) {
                let last = match text(a, "last_used_at") {
                    s if s.is_empty() => "never".to_string(),
                    s => esc(&s),
                };
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{last}</td><td>{}</td></tr>",
                    t(a, "label"),
                    t(a, "created_at"),
                    button(
                        &format!("/web/me/app-passwords/{}/revoke", seg(&text(a, "id"))),
                        &ctx.csrf,
                        "Revoke",
                        "danger"
                    )
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/web/me/app-passwords\" class=\"row\" id=\"new-app-password\">{csrf}<div><label for=\"label\">Device</label><input type=\"text\" id=\"label\" name=\"label\" placeholder=\"e.g. phone\" maxlength=\"100\" required></div><div><button type=\"submit\" id=\"create-app-password\">Create app password</button></div></form></section>"
    ));
    body.push_str("<h2>Junk lists</h2><section id=\"junk-lists\"><p class=\"muted\">Senders you always accept (allow) or always send to Junk (block): an address, <code>@domain</code> or a domain.</p>");
    match fetch(
        &state,
        ApiCall::ListSpamLists {
            scope: Some(ctx.address.clone()),
            page: None,
        },
    )
    .await
    {
        Ok(v) => {
            body.push_str(
                "<table id=\"junk-entries\"><tr><th>Sender</th><th>List</th><th></th></tr>",
            );
            for e in list(&v) {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/web/me/junk-lists/remove\">{csrf}<input type=\"hidden\" name=\"entry\" value=\"{}\"><button class=\"danger\">Remove</button></form></td></tr>",
                    t(e, "entry"),
                    t(e, "list"),
                    t(e, "entry"),
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => body.push_str(&format!("<p class=\"bad-t\">{}</p>", esc(&e))),
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/web/me/junk-lists\" class=\"row\" id=\"junk-add\">{csrf}<div><label for=\"junk-entry\">Sender</label><input type=\"text\" id=\"junk-entry\" name=\"entry\" placeholder=\"e.g. news@example.com or @example.com\" maxlength=\"255\" required></div><div><button type=\"submit\" name=\"list\" value=\"allow\">Allow</button> <button type=\"submit\" name=\"list\" value=\"block\" class=\"danger\">Block</button></div></form></section>"
    ));
    let rules = fetch(
        &state,
        ApiCall::GetRules {
            address: ctx.address.clone(),
        },
    )
    .await
    .unwrap_or(Value::Null);
    let v = &rules["vacation"];
    let on = v.is_object();
    body.push_str(&format!(
        "<h2>Vacation reply</h2><section><p>{}</p><form method=\"post\" action=\"/web/me/vacation\">{csrf}<label for=\"subject\">Subject</label><input type=\"text\" id=\"subject\" name=\"subject\" value=\"{}\"><label for=\"vbody\">Message</label><textarea id=\"vbody\" name=\"body\">{}</textarea><div class=\"row\"><div><label for=\"until\">Until (YYYY-MM-DD, optional)</label><input type=\"text\" id=\"until\" name=\"until\" value=\"{}\"></div><div><label for=\"days\">Reply to a sender once every (days)</label><input type=\"number\" id=\"days\" name=\"days\" min=\"1\" value=\"{}\"></div><div><button type=\"submit\" name=\"op\" value=\"on\">Save and turn on</button> <button type=\"submit\" name=\"op\" value=\"off\" class=\"link\">Turn off</button></div></div></form></section>",
        if on { "<span class=\"ok-t\">On.</span>" } else { "Off." },
        t(v, "subject"),
        t(v, "body"),
        t(v, "until"),
        match text(v, "days") {
            d if d.is_empty() => "7".to_string(),
            d => esc(&d),
        }
    ));
    let f = &rules["forward"];
    let fon = f.is_object();
    body.push_str(&format!(
        "<h2>Forwarding</h2><section><p>{}</p><form method=\"post\" action=\"/web/me/forward\" class=\"row\">{csrf}<div><label for=\"target\">Forward to</label><input type=\"email\" id=\"target\" name=\"target\" value=\"{}\"></div><div><label class=\"inline\"><input type=\"checkbox\" name=\"keep\" value=\"1\"{}> keep a copy here</label></div><div><button type=\"submit\" name=\"op\" value=\"on\">Save and turn on</button> <button type=\"submit\" name=\"op\" value=\"off\" class=\"link\">Turn off</button></div></form></section>",
        if fon { "<span class=\"ok-t\">On.</span>" } else { "Off." },
        t(f, "target"),
        if !fon || flag(f, "keep") { " checked" } else { "" }
    ));
    page("My account", &ctx, "/web/me", &body)
}

async fn me_password(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let ctx = match guard_post(&state, &headers, &form, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ip = client_ip(&state, peer.map(|c| c.0.0), &headers);
    let new = field(&form, "new");
    let flash = if new != field(&form, "confirm") {
        Flash::err("The two new passwords differ.")
    } else {
        match state
            .directory()
            .authenticate_account_password(&ctx.address, field(&form, "current"), ip)
            .await
        {
            Err(wharf_directory::AuthError::Throttled { .. }) => {
                Flash::err("Too many failed attempts: try again later.")
            }
            Err(_) => Flash::err("The current password is wrong."),
            Ok(_) => {
                tracing::info!(%ip, account = ctx.address, "web: own password change");
                match fetch(
                    &state,
                    ApiCall::ChangeOwnPassword {
                        address: ctx.address.clone(),
                        password: new.to_string(),
                    },
                )
                .await
                {
                    Ok(_) => {
                        // Other browsers signed in as this user (perhaps whoever learnt the
                        // old password) are signed out; this one stays.
                        let sessions = state.web_sessions();
                        match state.directory().account(&ctx.address).await {
                            Ok(Some(a)) => sessions.restamp(&ctx.sid, &stamp(&a.secret_hash)),
                            _ => sessions.remove(&ctx.sid),
                        }
                        let ended = sessions.remove_others(&ctx.address, &ctx.sid);
                        if ended > 0 {
                            tracing::info!(
                                account = ctx.address,
                                ended,
                                "web: other sessions ended"
                            );
                        }
                        Flash::ok("Password changed.")
                    }
                    Err(e) => Flash::err(e),
                }
            }
        }
    };
    state.web_sessions().flash(&ctx.sid, flash);
    redirect("/web/me")
}

/// Adds a sender to the user's own allow or block list (the scope is always their address).
async fn junk_add(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        false,
        "/web/me",
        |c, f| {
            let allow = match field(f, "list") {
                "allow" => true,
                "block" => false,
                _ => return Err("Choose Allow or Block.".to_string()),
            };
            Ok(ApiCall::PutSpamListEntry {
                scope: c.address.clone(),
                entry: field(f, "entry").to_string(),
                allow,
            })
        },
        |v| {
            Flash::ok(format!(
                "{} {}.",
                text(v, "entry"),
                if text(v, "list") == "allow" {
                    "is always accepted"
                } else {
                    "goes to Junk"
                }
            ))
        },
    )
    .await
}

async fn junk_remove(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        false,
        "/web/me",
        |c, f| {
            Ok(ApiCall::DeleteSpamListEntry {
                scope: c.address.clone(),
                entry: field(f, "entry").to_string(),
            })
        },
        |_| Flash::ok("Removed from your junk lists."),
    )
    .await
}

async fn app_password_create(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        false,
        "/web/me",
        |c, f| {
            Ok(ApiCall::CreateAppPassword {
                address: c.address.clone(),
                label: field(f, "label").to_string(),
            })
        },
        |v| Flash {
            ok: true,
            text: format!("App password for {} created.", text(v, "label")),
            secret: Some(text(v, "secret")),
        },
    )
    .await
}

async fn app_password_revoke(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        false,
        "/web/me",
        |c, _| {
            let id = id
                .parse::<i64>()
                .map_err(|_| format!("{id:?} is not an app password id"))?;
            Ok(ApiCall::RevokeAppPassword {
                address: c.address.clone(),
                id,
            })
        },
        |_| Flash::ok("App password revoked: it no longer works."),
    )
    .await
}

fn opt(form: &Form, name: &str) -> Option<String> {
    let v = field(form, name).trim();
    (!v.is_empty()).then(|| v.to_string())
}

async fn me_vacation(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        false,
        "/web/me",
        |c, f| {
            let vacation = if field(f, "op") == "off" {
                None
            } else {
                let days = match opt(f, "days") {
                    Some(d) => Some(
                        d.parse::<u32>()
                            .map_err(|_| format!("{d:?} is not a number of days"))?,
                    ),
                    None => None,
                };
                Some(VacationInput {
                    subject: opt(f, "subject"),
                    body: field(f, "body").to_string(),
                    from: None,
                    until: opt(f, "until"),
                    days,
                })
            };
            Ok(ApiCall::SetVacation {
                address: c.address.clone(),
                vacation,
            })
        },
        |v| {
            Flash::ok(if v["vacation"].is_object() {
                "Vacation reply is on."
            } else {
                "Vacation reply is off."
            })
        },
    )
    .await
}

async fn me_forward(
    State(state): State<HttpState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(
        &state,
        peer,
        &headers,
        &body,
        false,
        "/web/me",
        |c, f| {
            let forward = (field(f, "op") != "off").then(|| ForwardInput {
                target: field(f, "target").trim().to_string(),
                keep: !field(f, "keep").is_empty(),
            });
            Ok(ApiCall::SetForward {
                address: c.address.clone(),
                forward,
            })
        },
        |v| {
            Flash::ok(if v["forward"].is_object() {
                "Forwarding is on."
            } else {
                "Forwarding is off."
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_cookies_parse() {
        let f = parse_form(&Bytes::from_static(
            b"csrf=ab&address=a%40b.test&password=x+y%25&empty=&bad=%zz",
        ));
        assert_eq!(f["csrf"], "ab");
        assert_eq!(f["address"], "a@b.test");
        assert_eq!(f["password"], "x y%");
        assert_eq!(f["empty"], "");
        assert_eq!(f["bad"], "%zz");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; __Host-wharf_session=s3cr3t".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("s3cr3t"));
        assert!(cookie(&h, LOGIN_COOKIE).is_none());
        let c = set_cookie(SESSION_COOKIE, "x", None);
        assert!(c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }

    #[test]
    fn escaping_and_tokens() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(seg("a b/c@d"), "a%20b%2Fc@d");
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn dashboard_counters() {
        let m = "# TYPE x counter\nwharf_messages_delivered_total{kind=\"local\"} 3\nwharf_messages_delivered_total{kind=\"remote\"} 2\nwharf_auth_total{protocol=\"imap\",result=\"success\"} 9\nwharf_auth_total{protocol=\"imap\",result=\"failure\"} 4\nwharf_messages_bounced_total 1\n";
        assert_eq!(counters(m), [5, 0, 1, 4]);
    }

    #[test]
    fn sessions_expire_and_flash_once() {
        let s = Sessions::default();
        let (sid, csrf) = s.create(7, "s", "a@b.test");
        s.flash(&sid, Flash::ok("done"));
        let v = s.get(&sid, true).unwrap();
        assert_eq!(
            (v.account, v.address.as_str(), v.csrf.as_str()),
            (7, "a@b.test", csrf.as_str())
        );
        assert!(v.flash.is_some());
        assert!(s.get(&sid, true).unwrap().flash.is_none());
        s.remove(&sid);
        assert!(s.get(&sid, false).is_none());
        assert!(s.get("", false).is_none());
    }

    #[test]
    fn empty_tokens_never_match() {
        assert!(!same("", ""));
        assert!(!same("", "a"));
    }

    #[test]
    fn flash_with_a_secret_expires() {
        let s = Sessions::default();
        let (sid, _) = s.create(1, "s", "a@b.test");
        s.flash(
            &sid,
            Flash {
                ok: true,
                text: "created".into(),
                secret: Some("abcd-efgh".into()),
            },
        );
        let later = Instant::now() + FLASH_TTL + Duration::from_secs(1);
        let v = s.get_at(later, &sid, true).unwrap();
        assert!(v.flash.is_none(), "a stale flash is not shown");
        // Not left behind either.
        assert!(s.lock().get(&sid).unwrap().flash.is_none());
    }

    #[test]
    fn session_table_evictions() {
        let s = Sessions::default();
        let t0 = Instant::now();
        // Per account: past the cap, the account's oldest goes; others are untouched.
        let other = s.create_at(t0, 2, "s", "b@x.test", 100, 3).0;
        let a: Vec<String> = (0..3u64)
            .map(|i| {
                s.create_at(t0 + Duration::from_secs(i + 1), 1, "s", "a@x.test", 100, 3)
                    .0
            })
            .collect();
        let newest = s
            .create_at(t0 + Duration::from_secs(10), 1, "s", "a@x.test", 100, 3)
            .0;
        let at = t0 + Duration::from_secs(11);
        assert!(s.get_at(at, &a[0], false).is_none(), "oldest evicted");
        assert!(s.get_at(at, &a[1], false).is_some());
        assert!(s.get_at(at, &a[2], false).is_some());
        assert!(s.get_at(at, &newest, false).is_some());
        assert!(s.get_at(at, &other, false).is_some());
        assert_eq!(s.len(), 4);

        // Table full: the least recently seen session of anyone goes, the sign-in succeeds.
        let s = Sessions::default();
        let x = s.create_at(t0, 1, "s", "a@x.test", 3, 16).0;
        let y = s
            .create_at(t0 + Duration::from_secs(1), 2, "s", "b@x.test", 3, 16)
            .0;
        let z = s
            .create_at(t0 + Duration::from_secs(2), 3, "s", "c@x.test", 3, 16)
            .0;
        // x is used again, so y is now the stalest.
        assert!(s.get_at(t0 + Duration::from_secs(3), &x, false).is_some());
        let admin = s
            .create_at(t0 + Duration::from_secs(4), 9, "s", "admin@x.test", 3, 16)
            .0;
        let at = t0 + Duration::from_secs(5);
        assert_eq!(s.len(), 3);
        assert!(s.get_at(at, &y, false).is_none());
        for sid in [&x, &z, &admin] {
            assert!(s.get_at(at, sid, false).is_some());
        }

        // Expired sessions are swept on every insert, not only when the table is full.
        let s = Sessions::default();
        s.create_at(t0, 1, "s", "a@x.test", 100, 16);
        s.create_at(t0, 2, "s", "b@x.test", 100, 16);
        s.create_at(
            t0 + IDLE + Duration::from_secs(1),
            3,
            "s",
            "c@x.test",
            100,
            16,
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn remove_for_ends_an_accounts_sessions() {
        let s = Sessions::default();
        let a1 = s.create(1, "s", "a@x.test").0;
        let a2 = s.create(1, "s", "a@x.test").0;
        let b = s.create(2, "s", "b@x.test").0;
        assert_eq!(s.remove_others("a@x.test", &a2), 1);
        assert!(s.get(&a1, false).is_none());
        assert!(s.get(&a2, false).is_some());
        assert_eq!(s.remove_for("A@x.test"), 1);
        assert!(s.get(&a2, false).is_none());
        assert!(s.get(&b, false).is_some());
        // An admin's reset, disabling or deletion through any caller ends them.
        after_call(
            &s,
            &ApiCall::SetDisabled {
                address: "b@x.test".into(),
                disabled: true,
            },
        );
        assert!(s.get(&b, false).is_none());
    }
}
