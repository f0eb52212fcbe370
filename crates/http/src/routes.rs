//! The router: Thunderbird autoconfig, Outlook Autodiscover v1 (POX) and
//! the MTA-STS policy, each answered only for local domains.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use wharf_directory::Directory;

use crate::config::{ConfigError, HttpConfig, IpNet, in_any};
use crate::dns::mta_sts_policy;
use crate::xml::{element_text, escape};

/// Looks up the RFC 8555 HTTP-01 key authorization for a token.
pub type AcmeChallengeLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct HttpState {
    directory: Directory,
    config: Arc<HttpConfig>,
    proxies: Arc<Vec<IpNet>>,
    metrics_allow: Arc<Vec<IpNet>>,
    metrics: Option<PrometheusHandle>,
    acme: Option<AcmeChallengeLookup>,
    admin_api: Option<crate::api::SharedAdminApi>,
    web: crate::web::Sessions,
}

impl HttpState {
    pub fn new(directory: Directory, config: HttpConfig) -> Result<HttpState, ConfigError> {
        let proxies = config.parsed_proxies()?;
        let metrics_allow = config.parsed_metrics_allow()?;
        Ok(HttpState {
            directory,
            config: Arc::new(config),
            proxies: Arc::new(proxies),
            metrics_allow: Arc::new(metrics_allow),
            metrics: None,
            acme: None,
            admin_api: None,
            web: crate::web::Sessions::default(),
        })
    }

    /// Serves the admin REST API under `/api/v1` with `api`'s operations (else its paths are 404).
    pub fn with_admin_api(mut self, api: crate::api::SharedAdminApi) -> HttpState {
        self.admin_api = Some(api);
        self
    }

    pub(crate) fn admin_api(&self) -> Option<&crate::api::SharedAdminApi> {
        self.admin_api.as_ref()
    }

    pub(crate) fn web_sessions(&self) -> &crate::web::Sessions {
        &self.web
    }

    /// The Prometheus text of this process's metrics, when `/metrics` is on (web dashboard).
    pub(crate) fn metrics_text(&self) -> Option<String> {
        self.metrics.as_ref().map(PrometheusHandle::render)
    }

    pub(crate) fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Answers `/.well-known/acme-challenge/{token}` from `lookup`
    /// (the ACME manager's pending HTTP-01 challenges).
    pub fn with_acme_challenges(mut self, lookup: AcmeChallengeLookup) -> HttpState {
        self.acme = Some(lookup);
        self
    }

    /// Serves `/metrics` from `handle` when `config.metrics` is on.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> HttpState {
        if self.config.metrics {
            self.metrics = Some(handle);
        }
        self
    }
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(autoconfig),
        )
        .route("/mail/config-v1.1.xml", get(autoconfig))
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
        .route("/.well-known/mta-sts.txt", get(mta_sts))
        .route("/autodiscover/autodiscover.json", get(autodiscover_json))
        .route(
            "/autodiscover/autodiscover.json/v1.0/{email}",
            get(autodiscover_json_path),
        )
        .route("/metrics", get(metrics))
        .route("/.well-known/acme-challenge/{token}", get(acme_challenge))
        .route("/apple/profile", get(apple_profile))
        .nest("/api/v1", crate::api::router(state.clone()))
        // The web admin and self-service pages under /web (served when the admin API is).
        .merge(crate::web::router(state.clone()))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// Whether credentials may travel on this request: it came over TLS, from loopback, or from a
/// trusted proxy that says the client spoke https (`X-Forwarded-Proto`).
pub(crate) fn confidential(
    state: &HttpState,
    transport: Option<crate::handler::Transport>,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> bool {
    // Requests that did not come through the handler (tests of the bare router) count as TLS.
    if transport.is_none_or(|t| t.encrypted) {
        return true;
    }
    let Some(peer) = peer else { return false };
    if peer.ip().is_loopback() && !in_any(&state.proxies, &peer.ip()) {
        return true;
    }
    in_any(&state.proxies, &peer.ip())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Host the client asked for; X-Forwarded-Host only from a trusted proxy.
fn request_host(
    state: &HttpState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<String> {
    let trusted = peer.is_some_and(|p| in_any(&state.proxies, &p.ip()));
    let value = trusted
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .or_else(|| headers.get(header::HOST))?;
    let host = value.to_str().ok()?.split(',').next()?.trim();
    // Strip a port, but not from a bracketed IPv6 literal.
    let host = match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// The client's address: behind trusted proxies, the rightmost
/// X-Forwarded-For entry that is not itself a trusted proxy.
pub(crate) fn client_ip(
    state: &HttpState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    if !in_any(&state.proxies, &peer_ip) {
        return peer_ip;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry {
            Ok(ip) if in_any(&state.proxies, ip) => continue,
            Ok(ip) => return *ip,
            // An unparsable hop ends the chain we can trust.
            Err(_) => break,
        }
    }
    peer_ip
}

/// RFC 8555 section 8.3: the key authorization as the whole body.
async fn acme_challenge(
    State(state): State<HttpState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    match state.acme.as_ref().and_then(|lookup| lookup(&token)) {
        Some(key_authorization) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_authorization,
        )
            .into_response(),
        None => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn local(state: &HttpState, domain: &str) -> Result<bool, Response> {
    if domain.is_empty() || domain.len() > 253 {
        return Ok(false);
    }
    state.directory.is_local_domain(domain).await.map_err(|e| {
        tracing::warn!(error = %e, "http: domain lookup failed");
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n").into_response()
    })
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn autoconfig(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let domain = match q.get("emailaddress") {
        Some(addr) => match addr.rsplit_once('@') {
            Some((_, d)) => d.trim().trim_end_matches('.').to_ascii_lowercase(),
            None => {
                return (StatusCode::BAD_REQUEST, "emailaddress needs a domain\n").into_response();
            }
        },
        None => match request_host(&state, peer.map(|c| c.0.0), &headers) {
            Some(h) => h.strip_prefix("autoconfig.").unwrap_or(&h).to_string(),
            None => return not_found(),
        },
    };
    match local(&state, &domain).await {
        Ok(true) => xml(autoconfig_xml(&state.config, &domain)),
        Ok(false) => {
            tracing::info!(%domain, "autoconfig: not a local domain");
            not_found()
        }
        Err(r) => r,
    }
}

fn autoconfig_xml(cfg: &HttpConfig, domain: &str) -> String {
    let d = escape(domain);
    let host = escape(&cfg.hostname);
    let p = &cfg.ports;
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{d}</displayName>\n    <displayShortName>{d}</displayShortName>\n"
    );
    let server = |kind: &str, ty: &str, port: u16, socket: &str| {
        format!(
            "    <{kind} type=\"{ty}\">\n      <hostname>{host}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </{kind}>\n"
        )
    };
    for (kind, ty, port, socket) in [
        ("incomingServer", "imap", p.imaps, "SSL"),
        ("incomingServer", "imap", p.imap, "STARTTLS"),
        ("incomingServer", "pop3", p.pop3s, "SSL"),
        ("incomingServer", "pop3", p.pop3, "STARTTLS"),
        ("outgoingServer", "smtp", p.submissions, "SSL"),
        ("outgoingServer", "smtp", p.submission, "STARTTLS"),
    ] {
        if port != 0 {
            s.push_str(&server(kind, ty, port, socket));
        }
    }
    s.push_str("  </emailProvider>\n</clientConfig>\n");
    s
}

const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

async fn autodiscover(State(state): State<HttpState>, body: Bytes) -> Response {
    let Some(email) = element_text(&body, "EMailAddress") else {
        tracing::info!("autodiscover: request without EMailAddress");
        return (StatusCode::BAD_REQUEST, "EMailAddress missing\n").into_response();
    };
    if let Some(schema) = element_text(&body, "AcceptableResponseSchema")
        && schema != RESPONSE_SCHEMA
    {
        tracing::info!(%schema, "autodiscover: unsupported response schema");
        return not_found();
    }
    let Some((_, domain)) = email.rsplit_once('@') else {
        return (StatusCode::BAD_REQUEST, "EMailAddress needs a domain\n").into_response();
    };
    match local(&state, &domain.to_ascii_lowercase()).await {
        Ok(true) => xml(autodiscover_xml(&state.config, &email)),
        Ok(false) => not_found(),
        Err(r) => r,
    }
}

fn autodiscover_xml(cfg: &HttpConfig, email: &str) -> String {
    let host = escape(&cfg.hostname);
    let login = escape(email);
    let p = &cfg.ports;
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  <Response xmlns=\"{RESPONSE_SCHEMA}\">\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n"
    );
    // One entry per protocol: Outlook uses the first of each Type, so the
    // implicit-TLS port wins and STARTTLS is the fallback.
    for (ty, implicit, starttls) in [
        ("IMAP", p.imaps, p.imap),
        ("POP3", p.pop3s, p.pop3),
        ("SMTP", p.submissions, p.submission),
    ] {
        let (port, ssl, enc) = if implicit != 0 {
            (implicit, "on", "SSL")
        } else if starttls != 0 {
            (starttls, "off", "TLS")
        } else {
            continue;
        };
        s.push_str(&format!(
            "      <Protocol>\n        <Type>{ty}</Type>\n        <Server>{host}</Server>\n        <Port>{port}</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>{login}</LoginName>\n        <SPA>off</SPA>\n        <SSL>{ssl}</SSL>\n        <Encryption>{enc}</Encryption>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n"
        ));
    }
    s.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    s
}

async fn mta_sts(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let Some(host) = request_host(&state, peer.map(|c| c.0.0), &headers) else {
        return not_found();
    };
    let Some(domain) = host.strip_prefix("mta-sts.") else {
        return not_found();
    };
    match local(&state, domain).await {
        Ok(true) => (
            [(header::CONTENT_TYPE, "text/plain")],
            mta_sts_policy(&state.config.mta_sts, &state.config.hostname),
        )
            .into_response(),
        Ok(false) => not_found(),
        Err(r) => r,
    }
}

async fn metrics(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let Some(h) = &state.metrics else {
        return not_found();
    };
    let ip = client_ip(&state, peer.map(|c| c.0.0), &headers);
    if !in_any(&state.metrics_allow, &ip) {
        tracing::info!(%ip, "metrics: client not in http.metrics_allow");
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.render(),
    )
        .into_response()
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"ErrorCode": code, "ErrorMessage": message})),
    )
        .into_response()
}

/// Autodiscover v2: only `Protocol=AutodiscoverV1` applies to IMAP/SMTP
/// clients; it points at the v1 POX endpoint on this host.
async fn autodiscover_v2(
    state: &HttpState,
    email: Option<&String>,
    protocol: Option<&String>,
) -> Response {
    let Some((_, domain)) = email.and_then(|e| e.rsplit_once('@')) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "InvalidUser",
            "Email is missing or has no domain",
        );
    };
    match local(state, &domain.to_ascii_lowercase()).await {
        Ok(true) => {}
        Ok(false) => return json_error(StatusCode::NOT_FOUND, "InvalidUser", "Not a local domain"),
        Err(r) => return r,
    }
    match protocol {
        Some(p) if p.eq_ignore_ascii_case("AutodiscoverV1") => axum::Json(serde_json::json!({
            "Protocol": "AutodiscoverV1",
            "Url": format!("https://{}/Autodiscover/Autodiscover.xml", state.config.hostname),
        }))
        .into_response(),
        _ => json_error(
            StatusCode::NOT_FOUND,
            "ProtocolNotSupported",
            "Only AutodiscoverV1 is offered",
        ),
    }
}

async fn autodiscover_json(
    State(state): State<HttpState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    autodiscover_v2(&state, q.get("Email"), q.get("Protocol")).await
}

async fn autodiscover_json_path(
    State(state): State<HttpState>,
    axum::extract::Path(email): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    autodiscover_v2(&state, Some(&email), q.get("Protocol")).await
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"wharf\", charset=\"UTF-8\"",
        )],
        "authentication required\n",
    )
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 2048 {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

async fn apple_profile(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    transport: Option<Extension<crate::handler::Transport>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // The profile is fetched with the account password: never over plain HTTP.
    if !confidential(
        &state,
        transport.map(|t| t.0),
        peer.as_ref().map(|c| c.0.0),
        &headers,
    ) {
        return (
            StatusCode::FORBIDDEN,
            "the configuration profile takes your password: fetch it over https\n",
        )
            .into_response();
    }
    let Some((user, pass)) = basic_credentials(&headers) else {
        return unauthorized();
    };
    let ip = client_ip(&state, peer.map(|c| c.0.0), &headers);
    let account = match state.directory.authenticate(&user, &pass, ip).await {
        Ok(a) => a,
        Err(wharf_directory::AuthError::Throttled { retry_after }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    header::RETRY_AFTER,
                    retry_after.as_secs().max(1).to_string(),
                )],
                "too many failed attempts\n",
            )
                .into_response();
        }
        Err(wharf_directory::AuthError::Temporary(e)) => {
            tracing::warn!(error = %e, "apple profile: authentication unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n").into_response();
        }
        Err(e) => {
            tracing::info!(%ip, %user, error = ?e, "apple profile: authentication failed");
            return unauthorized();
        }
    };
    if let Some(email) = q.get("email")
        && !email.eq_ignore_ascii_case(&account.address)
    {
        return (
            StatusCode::FORBIDDEN,
            "profile is only for your own address\n",
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/x-apple-aspen-config".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mail.mobileconfig\"".to_string(),
            ),
        ],
        crate::apple::profile(&state.config, &account.address),
    )
        .into_response()
}
