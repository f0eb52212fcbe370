//! A minimal RFC 8555 ACME CA for the tests, on loopback HTTPS: directory,
//! newNonce, newAccount, newOrder, authorizations, challenges, finalize and
//! certificate download. Every POST is a JWS whose ES256 signature, nonce
//! and url are checked (ring). Validation really connects to Wharf:
//! HTTP-01 with a GET on the HTTP listener, TLS-ALPN-01 with an `acme-tls/1`
//! handshake on the HTTPS listener that checks the acmeIdentifier extension.
//! Certificates are signed by a test CA (rcgen) with a short validity.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use x509_parser::prelude::FromDer;

const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

pub struct TestCa {
    pub directory_url: String,
    /// PEM of the CA that signs both the directory's HTTPS certificate and
    /// the issued certificates.
    pub root_path: PathBuf,
    pub root_pem: String,
    inner: Arc<Ca>,
    _dir: tempfile::TempDir,
}

struct Ca {
    base: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    root_pem: String,
    state: Mutex<CaState>,
}

#[derive(Default)]
struct CaState {
    nonces: HashSet<String>,
    next_id: u64,
    /// kid -> (uncompressed P-256 point, JWK thumbprint)
    accounts: HashMap<String, (Vec<u8>, String)>,
    orders: HashMap<u64, Order>,
    authzs: HashMap<u64, Authz>,
    challenges: HashMap<u64, Chall>,
    certs: HashMap<u64, String>,
    validity: Duration,
    /// Where "port 80" and "port 443" of every name are.
    http_target: Option<SocketAddr>,
    tls_target: Option<SocketAddr>,
    pub stats: Stats,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub accounts: usize,
    pub orders: usize,
    pub issued: usize,
    pub validations_ok: Vec<(String, String)>,
    pub validations_failed: Vec<(String, String, String)>,
    /// HTTP-01 tokens that were checked (to look them up afterwards).
    pub tokens: Vec<String>,
}

struct Order {
    account: String,
    names: Vec<String>,
    authzs: Vec<u64>,
    cert: Option<u64>,
}

struct Authz {
    account: String,
    name: String,
    status: &'static str,
    challenges: Vec<u64>,
}

#[derive(Clone)]
struct Chall {
    authz: u64,
    kind: &'static str,
    token: String,
    status: &'static str,
    error: Option<String>,
}

struct Problem(StatusCode, &'static str, String);

impl TestCa {
    pub async fn start(validity: Duration) -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Wharf test ACME CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let root_pem = ca_cert.pem();
        let issuer = rcgen::Issuer::new(params, ca_key);

        // The directory's own HTTPS certificate, for 127.0.0.1.
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let root_path = dir.path().join("ca.pem");
        std::fs::write(&root_path, &root_pem).unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("https://{addr}");
        let inner = Arc::new(Ca {
            base: base.clone(),
            issuer,
            root_pem: root_pem.clone(),
            state: Mutex::new(CaState {
                validity,
                ..CaState::default()
            }),
        });
        let app = Router::new()
            .route("/dir", get(directory))
            .route("/nonce", get(new_nonce))
            .route("/acme/{kind}/{id}", post(acme_post))
            .with_state(Arc::clone(&inner));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| app.clone().oneshot(req),
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestCa {
            directory_url: format!("{base}/dir"),
            root_path,
            root_pem,
            inner,
            _dir: dir,
        }
    }

    /// Where this CA connects to validate: Wharf's HTTP and HTTPS listeners.
    pub fn validate_against(&self, http: SocketAddr, https: SocketAddr) {
        let mut s = self.inner.state.lock().unwrap();
        s.http_target = Some(http);
        s.tls_target = Some(https);
    }

    pub fn stats(&self) -> Stats {
        self.inner.state.lock().unwrap().stats.clone()
    }

    /// Root store trusting this CA (for the observing TLS clients).
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.root_pem.as_bytes()).unwrap())
            .unwrap();
        roots
    }
}

impl Ca {
    fn url(&self, kind: &str, id: u64) -> String {
        format!("{}/acme/{kind}/{id}", self.base)
    }

    fn nonce(&self) -> String {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let n = B64.encode(b);
        self.state.lock().unwrap().nonces.insert(n.clone());
        n
    }

    fn reply(&self, status: StatusCode, location: Option<String>, body: Value) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            "replay-nonce",
            HeaderValue::from_str(&self.nonce()).unwrap(),
        );
        if let Some(l) = location {
            headers.insert(header::LOCATION, HeaderValue::from_str(&l).unwrap());
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        (status, headers, body.to_string()).into_response()
    }

    fn problem(&self, p: Problem) -> Response {
        let Problem(status, kind, detail) = p;
        let mut r = self.reply(
            status,
            None,
            json!({"type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail, "status": status.as_u16()}),
        );
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        r
    }

    fn order_json(&self, s: &CaState, id: u64) -> Value {
        let o = &s.orders[&id];
        let statuses: Vec<&str> = o.authzs.iter().map(|a| s.authzs[a].status).collect();
        let status = if o.cert.is_some() {
            "valid"
        } else if statuses.contains(&"invalid") {
            "invalid"
        } else if statuses.iter().all(|s| *s == "valid") {
            "ready"
        } else {
            "pending"
        };
        let mut v = json!({
            "status": status,
            "identifiers": o.names.iter().map(|n| json!({"type": "dns", "value": n})).collect::<Vec<_>>(),
            "authorizations": o.authzs.iter().map(|a| self.url("authz", *a)).collect::<Vec<_>>(),
            "finalize": self.url("finalize", id),
        });
        if let Some(c) = o.cert {
            v["certificate"] = json!(self.url("cert", c));
        }
        v
    }

    fn challenge_json(&self, id: u64, c: &Chall) -> Value {
        let mut v = json!({"type": c.kind, "url": self.url("chall", id), "token": c.token, "status": c.status});
        if let Some(e) = &c.error {
            v["error"] = json!({"type": "urn:ietf:params:acme:error:connection", "detail": e});
        }
        v
    }

    fn authz_json(&self, s: &CaState, id: u64) -> Value {
        let a = &s.authzs[&id];
        json!({
            "status": a.status,
            "identifier": {"type": "dns", "value": a.name},
            "challenges": a.challenges.iter().map(|c| self.challenge_json(*c, &s.challenges[c])).collect::<Vec<_>>(),
        })
    }
}

async fn directory(State(ca): State<Arc<Ca>>) -> Response {
    let b = &ca.base;
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "newNonce": format!("{b}/nonce"),
            "newAccount": format!("{b}/acme/new-account/0"),
            "newOrder": format!("{b}/acme/new-order/0"),
        })
        .to_string(),
    )
        .into_response()
}

async fn new_nonce(State(ca): State<Arc<Ca>>) -> Response {
    (
        StatusCode::OK,
        [
            ("replay-nonce", ca.nonce()),
            ("cache-control", "no-store".to_string()),
        ],
    )
        .into_response()
}

/// A verified JWS: who signed it and what it says.
struct Jws {
    kid: Option<String>,
    jwk: Option<(Vec<u8>, String)>,
    payload: Vec<u8>,
}

/// RFC 8555 section 6.2: flattened JWS, ES256, fresh nonce, matching url,
/// `jwk` only for newAccount and `kid` everywhere else.
fn verify_jws(ca: &Ca, url: &str, body: &[u8]) -> Result<Jws, Problem> {
    let malformed = |d: &str| Problem(StatusCode::BAD_REQUEST, "malformed", d.to_string());
    let outer: Value = serde_json::from_slice(body).map_err(|_| malformed("body is not JSON"))?;
    let field = |k: &str| {
        outer[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| malformed(&format!("JWS without {k}")))
    };
    let (protected_b64, payload_b64, sig_b64) =
        (field("protected")?, field("payload")?, field("signature")?);
    let protected: Value = serde_json::from_slice(
        &B64.decode(&protected_b64)
            .map_err(|_| malformed("protected not base64url"))?,
    )
    .map_err(|_| malformed("protected not JSON"))?;
    if protected["alg"] != "ES256" {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "badSignatureAlgorithm",
            format!("alg {}", protected["alg"]),
        ));
    }
    let nonce = protected["nonce"].as_str().unwrap_or_default();
    if !ca.state.lock().unwrap().nonces.remove(nonce) {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "badNonce",
            format!("nonce {nonce:?} unknown or used"),
        ));
    }
    if protected["url"] != url {
        return Err(Problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("url {} signed for {url}", protected["url"]),
        ));
    }
    let (kid, jwk, key) = match (protected.get("jwk"), protected.get("kid")) {
        (Some(jwk), None) => {
            if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
                return Err(malformed("jwk is not an EC P-256 key"));
            }
            let x = jwk["x"].as_str().unwrap_or_default();
            let y = jwk["y"].as_str().unwrap_or_default();
            let mut point = vec![4u8];
            point.extend(B64.decode(x).map_err(|_| malformed("jwk x"))?);
            point.extend(B64.decode(y).map_err(|_| malformed("jwk y"))?);
            if point.len() != 65 {
                return Err(malformed("jwk point length"));
            }
            // RFC 7638 thumbprint: the required members, sorted, no spaces.
            let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
            let thumb = B64.encode(ring::digest::digest(
                &ring::digest::SHA256,
                canonical.as_bytes(),
            ));
            (None, Some((point.clone(), thumb)), point)
        }
        (None, Some(kid)) => {
            let kid = kid.as_str().unwrap_or_default().to_string();
            let key = ca
                .state
                .lock()
                .unwrap()
                .accounts
                .get(&kid)
                .map(|(k, _)| k.clone())
                .ok_or_else(|| {
                    Problem(
                        StatusCode::BAD_REQUEST,
                        "accountDoesNotExist",
                        format!("no account {kid}"),
                    )
                })?;
            (Some(kid), None, key)
        }
        _ => return Err(malformed("exactly one of jwk and kid")),
    };
    let sig = B64
        .decode(&sig_b64)
        .map_err(|_| malformed("signature not base64url"))?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &key)
        .verify(format!("{protected_b64}.{payload_b64}").as_bytes(), &sig)
        .map_err(|_| malformed("signature does not verify"))?;
    let payload = B64
        .decode(&payload_b64)
        .map_err(|_| malformed("payload not base64url"))?;
    Ok(Jws { kid, jwk, payload })
}

async fn acme_post(
    State(ca): State<Arc<Ca>>,
    Path((kind, id)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let url = format!("{}/acme/{kind}/{id}", ca.base);
    match handle(&ca, &kind, id, &url, &body).await {
        Ok(r) => r,
        Err(p) => ca.problem(p),
    }
}

fn not_found(what: &str) -> Problem {
    Problem(
        StatusCode::NOT_FOUND,
        "malformed",
        format!("no such {what}"),
    )
}

async fn handle(
    ca: &Arc<Ca>,
    kind: &str,
    id: u64,
    url: &str,
    body: &[u8],
) -> Result<Response, Problem> {
    let jws = verify_jws(ca, url, body)?;
    if kind == "new-account" {
        let Some((key, thumb)) = jws.jwk else {
            return Err(Problem(
                StatusCode::BAD_REQUEST,
                "malformed",
                "newAccount needs jwk".into(),
            ));
        };
        let payload: Value = serde_json::from_slice(&jws.payload)
            .map_err(|_| Problem(StatusCode::BAD_REQUEST, "malformed", "payload".into()))?;
        if payload["termsOfServiceAgreed"] != true {
            return Err(Problem(
                StatusCode::FORBIDDEN,
                "userActionRequired",
                "agree to the terms".into(),
            ));
        }
        let mut s = ca.state.lock().unwrap();
        s.next_id += 1;
        let kid = ca.url("account", s.next_id);
        s.accounts.insert(kid.clone(), (key, thumb));
        s.stats.accounts += 1;
        drop(s);
        return Ok(ca.reply(
            StatusCode::CREATED,
            Some(kid),
            json!({"status": "valid", "contact": payload["contact"]}),
        ));
    }
    let Some(kid) = jws.kid else {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            "kid required".into(),
        ));
    };
    let post_as_get = jws.payload.is_empty();
    match kind {
        "new-order" => {
            let payload: Value = serde_json::from_slice(&jws.payload)
                .map_err(|_| Problem(StatusCode::BAD_REQUEST, "malformed", "payload".into()))?;
            let mut names = Vec::new();
            for ident in payload["identifiers"].as_array().into_iter().flatten() {
                if ident["type"] != "dns" {
                    return Err(Problem(
                        StatusCode::BAD_REQUEST,
                        "rejectedIdentifier",
                        "dns only".into(),
                    ));
                }
                names.push(ident["value"].as_str().unwrap_or_default().to_string());
            }
            if names.is_empty() {
                return Err(Problem(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    "no identifiers".into(),
                ));
            }
            let mut s = ca.state.lock().unwrap();
            let mut authzs = Vec::new();
            for name in &names {
                s.next_id += 1;
                let authz_id = s.next_id;
                let mut challenges = Vec::new();
                for kind in ["http-01", "tls-alpn-01"] {
                    s.next_id += 1;
                    let mut t = [0u8; 24];
                    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut t)
                        .unwrap();
                    let c = Chall {
                        authz: authz_id,
                        kind,
                        token: B64.encode(t),
                        status: "pending",
                        error: None,
                    };
                    let cid = s.next_id;
                    s.challenges.insert(cid, c);
                    challenges.push(cid);
                }
                s.authzs.insert(
                    authz_id,
                    Authz {
                        account: kid.clone(),
                        name: name.clone(),
                        status: "pending",
                        challenges,
                    },
                );
                authzs.push(authz_id);
            }
            s.next_id += 1;
            let order_id = s.next_id;
            s.orders.insert(
                order_id,
                Order {
                    account: kid.clone(),
                    names,
                    authzs,
                    cert: None,
                },
            );
            s.stats.orders += 1;
            let v = ca.order_json(&s, order_id);
            drop(s);
            Ok(ca.reply(StatusCode::CREATED, Some(ca.url("order", order_id)), v))
        }
        "order" if post_as_get => {
            let s = ca.state.lock().unwrap();
            let o = s.orders.get(&id).ok_or_else(|| not_found("order"))?;
            if o.account != kid {
                return Err(Problem(
                    StatusCode::FORBIDDEN,
                    "unauthorized",
                    "not your order".into(),
                ));
            }
            let v = ca.order_json(&s, id);
            drop(s);
            Ok(ca.reply(StatusCode::OK, None, v))
        }
        "authz" if post_as_get => {
            let s = ca.state.lock().unwrap();
            let a = s
                .authzs
                .get(&id)
                .ok_or_else(|| not_found("authorization"))?;
            if a.account != kid {
                return Err(Problem(
                    StatusCode::FORBIDDEN,
                    "unauthorized",
                    "not your authorization".into(),
                ));
            }
            let v = ca.authz_json(&s, id);
            drop(s);
            Ok(ca.reply(StatusCode::OK, None, v))
        }
        "chall" => {
            let mut s = ca.state.lock().unwrap();
            let c = s
                .challenges
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found("challenge"))?;
            let a = &s.authzs[&c.authz];
            if a.account != kid {
                return Err(Problem(
                    StatusCode::FORBIDDEN,
                    "unauthorized",
                    "not your challenge".into(),
                ));
            }
            let name = a.name.clone();
            let thumb = s.accounts[&kid].1.clone();
            if !post_as_get && c.status == "pending" {
                if jws.payload != b"{}" {
                    return Err(Problem(
                        StatusCode::BAD_REQUEST,
                        "malformed",
                        "challenge response must be {}".into(),
                    ));
                }
                s.challenges.get_mut(&id).unwrap().status = "processing";
                let targets = (s.http_target, s.tls_target);
                let ca2 = Arc::clone(ca);
                let c2 = c.clone();
                tokio::spawn(async move {
                    let key_auth = format!("{}.{thumb}", c2.token);
                    let result = match c2.kind {
                        "http-01" => validate_http01(targets.0, &name, &c2.token, &key_auth).await,
                        _ => validate_tls_alpn01(targets.1, &name, &key_auth).await,
                    };
                    let mut s = ca2.state.lock().unwrap();
                    let (status, error) = match result {
                        Ok(()) => {
                            s.stats
                                .validations_ok
                                .push((name.clone(), c2.kind.to_string()));
                            ("valid", None)
                        }
                        Err(e) => {
                            s.stats.validations_failed.push((
                                name.clone(),
                                c2.kind.to_string(),
                                e.clone(),
                            ));
                            ("invalid", Some(e))
                        }
                    };
                    if c2.kind == "http-01" {
                        s.stats.tokens.push(c2.token.clone());
                    }
                    let ch = s.challenges.get_mut(&id).unwrap();
                    ch.status = status;
                    ch.error = error;
                    s.authzs.get_mut(&c2.authz).unwrap().status = status;
                });
            }
            let v = ca.challenge_json(id, &s.challenges[&id]);
            drop(s);
            Ok(ca.reply(StatusCode::OK, None, v))
        }
        "finalize" => {
            let payload: Value = serde_json::from_slice(&jws.payload)
                .map_err(|_| Problem(StatusCode::BAD_REQUEST, "malformed", "payload".into()))?;
            let csr_der = B64
                .decode(payload["csr"].as_str().unwrap_or_default())
                .map_err(|_| {
                    Problem(
                        StatusCode::BAD_REQUEST,
                        "badCSR",
                        "csr not base64url".into(),
                    )
                })?;
            let mut s = ca.state.lock().unwrap();
            let status = {
                let o = s.orders.get(&id).ok_or_else(|| not_found("order"))?;
                if o.account != kid {
                    return Err(Problem(
                        StatusCode::FORBIDDEN,
                        "unauthorized",
                        "not your order".into(),
                    ));
                }
                ca.order_json(&s, id)["status"].clone()
            };
            if status != "ready" {
                return Err(Problem(
                    StatusCode::FORBIDDEN,
                    "orderNotReady",
                    format!("order is {status}"),
                ));
            }
            // Parses the CSR and verifies its self-signature.
            let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der.into())
                .map_err(|e| Problem(StatusCode::BAD_REQUEST, "badCSR", e.to_string()))?;
            let mut csr_names: Vec<String> = csr
                .params
                .subject_alt_names
                .iter()
                .map(|san| match san {
                    rcgen::SanType::DnsName(n) => n.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            let mut order_names = s.orders[&id].names.clone();
            csr_names.sort();
            order_names.sort();
            if csr_names != order_names {
                return Err(Problem(
                    StatusCode::BAD_REQUEST,
                    "badCSR",
                    format!("CSR names {csr_names:?} differ from the order's {order_names:?}"),
                ));
            }
            let now = time::OffsetDateTime::now_utc();
            csr.params.not_before = now - time::Duration::seconds(1);
            csr.params.not_after = now + s.validity;
            let mut serial = [0u8; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial).unwrap();
            serial[0] &= 0x7f;
            serial[0] |= 0x10;
            csr.params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
            csr.params.is_ca = rcgen::IsCa::ExplicitNoCa;
            let cert = csr.signed_by(&ca.issuer).unwrap();
            s.next_id += 1;
            let cert_id = s.next_id;
            s.certs
                .insert(cert_id, format!("{}{}", cert.pem(), ca.root_pem));
            s.orders.get_mut(&id).unwrap().cert = Some(cert_id);
            s.stats.issued += 1;
            let v = ca.order_json(&s, id);
            drop(s);
            Ok(ca.reply(StatusCode::OK, Some(ca.url("order", id)), v))
        }
        "cert" if post_as_get => {
            let s = ca.state.lock().unwrap();
            let chain = s
                .certs
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found("certificate"))?;
            drop(s);
            let mut r = ca.reply(StatusCode::OK, None, Value::Null);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pem-certificate-chain"),
            );
            *r.body_mut() = axum::body::Body::from(chain);
            Ok(r)
        }
        _ => Err(Problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "malformed",
            format!("{kind} does not take this request"),
        )),
    }
}

/// RFC 8555 section 8.3: GET http://<name>/.well-known/acme-challenge/<token>
/// (on Wharf's HTTP listener), body must be the key authorization.
async fn validate_http01(
    target: Option<SocketAddr>,
    name: &str,
    token: &str,
    key_auth: &str,
) -> Result<(), String> {
    let target = target.ok_or("no HTTP target")?;
    let mut tcp = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("connect {target}: {e}"))?;
    let req = format!(
        "GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut resp))
        .await
        .map_err(|_| "HTTP-01 response timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "HTTP-01: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    if body.trim_end() != key_auth {
        return Err(format!("HTTP-01: wrong key authorization {body:?}"));
    }
    Ok(())
}

/// RFC 8737 section 3: handshake with SNI `name` and ALPN `acme-tls/1`
/// only; the server must negotiate `acme-tls/1` and present a certificate
/// whose only name is `name` with a critical acmeIdentifier extension
/// holding SHA-256(key authorization).
async fn validate_tls_alpn01(
    target: Option<SocketAddr>,
    name: &str,
    key_auth: &str,
) -> Result<(), String> {
    let target = target.ok_or("no TLS target")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("connect {target}: {e}"))?;
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS-ALPN-01 handshake: {e}"))?;
    let conn = tls.get_ref().1;
    if conn.alpn_protocol() != Some(b"acme-tls/1".as_slice()) {
        return Err(format!(
            "TLS-ALPN-01: ALPN {:?} negotiated",
            conn.alpn_protocol()
        ));
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    let (_, cert) =
        x509_parser::certificate::X509Certificate::from_der(leaf).map_err(|e| e.to_string())?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .ok_or("no subjectAltName")?;
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|g| g.to_string())
        .collect();
    if names != [format!("DNSName({name})")] {
        return Err(format!("TLS-ALPN-01: names {names:?}"));
    }
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER_OID)
        .ok_or("TLS-ALPN-01: no acmeIdentifier extension")?;
    if !ext.critical {
        return Err("TLS-ALPN-01: acmeIdentifier not critical".to_string());
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key_auth.as_bytes());
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(digest.as_ref());
    if ext.value != expected.as_slice() {
        return Err("TLS-ALPN-01: acmeIdentifier does not match the key authorization".to_string());
    }
    Ok(())
}

/// The validator trusts the self-signed challenge certificate by its
/// contents (checked above), not by a chain; handshake signatures are
/// still verified.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "the validator speaks TLS 1.3 only".into(),
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        // webpki refuses to parse a certificate with an unknown critical
        // extension (acmeIdentifier), so the key is taken from it directly.
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert)
            .map_err(|_| rustls::Error::General("unparsable certificate".into()))?;
        let spki =
            rustls_pki_types::SubjectPublicKeyInfoDer::from(parsed.tbs_certificate.subject_pki.raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The ALPN protocol a server negotiates for a handshake offering `alpn`
/// with SNI `name` (any certificate accepted).
pub async fn negotiated_alpn(target: SocketAddr, name: &str, alpn: &[u8]) -> Option<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(target).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}
