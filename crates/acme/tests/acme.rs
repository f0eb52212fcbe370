//! ACME against a minimal RFC 8555 CA on loopback (tests/support), whose
//! validation connects to Wharf's real HTTP and HTTPS listeners: issuance
//! by HTTP-01 and by TLS-ALPN-01, renewal with the hot swap seen by TLS
//! clients, and a failed validation that leaves the old certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use support::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wharf_acme::{
    AcmeError, AcmeManager, AcmeSettings, AcmeState, CertInfo, ChallengeAnswer, ChallengeKind,
    certificate_names,
};
use wharf_directory::DirectoryConfig;
use wharf_http::{HttpConfig, HttpState, router, serve};
use wharf_testkit::{Backend, TestCert, TestDirectory};

const HOST: &str = "mail.example.test";

type Session = tokio_rustls::client::TlsStream<TcpStream>;

struct Wharf {
    http: SocketAddr,
    https: SocketAddr,
    manager: Option<AcmeManager>,
    app: axum::Router,
    http_stop: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    _https_stop: oneshot::Sender<()>,
    names: Vec<String>,
    state_dir: std::path::PathBuf,
    _files: TestDirectory,
    _dir: tempfile::TempDir,
}

fn names() -> Vec<String> {
    certificate_names(HOST, &["example.test".to_string()], &[])
}

impl Wharf {
    async fn start(
        ca: &TestCa,
        kind: ChallengeKind,
        tune: impl FnOnce(&mut AcmeSettings),
    ) -> Wharf {
        Wharf::start_with(ca, kind, tune, None).await
    }

    /// `state`: the manager keeps its state there instead of files (a node of several).
    async fn start_with(
        ca: &TestCa,
        kind: ChallengeKind,
        tune: impl FnOnce(&mut AcmeSettings),
        state: Option<Arc<dyn AcmeState>>,
    ) -> Wharf {
        let dir = tempfile::tempdir().unwrap();
        let tls = TestCert::new(HOST, &[]).provider();
        let state_dir = dir.path().join("acme");
        let mut settings = AcmeSettings::new(ca.directory_url.clone(), names(), state_dir.clone());
        settings.contact = vec!["mailto:postmaster@example.test".to_string()];
        settings.challenge = kind;
        settings.ca_root = Some(ca.root_path.clone());
        settings.check_interval = Duration::from_millis(200);
        settings.retry_min = Duration::from_millis(300);
        settings.retry_max = Duration::from_secs(1);
        settings.order_timeout = Duration::from_secs(15);
        tune(&mut settings);
        let manager = match state {
            Some(state) => AcmeManager::with_state(settings, tls.clone(), state),
            None => AcmeManager::new(settings, tls.clone()).unwrap(),
        };

        let files = TestDirectory::new(Backend::Sqlite, DirectoryConfig::default()).await;
        let directory = files.directory.clone();
        directory.add_domain("example.test").await.unwrap();
        let http01 = manager.http01();
        let config = HttpConfig {
            hostname: HOST.to_string(),
            ..HttpConfig::default()
        };
        let app = router(
            HttpState::new(directory, config)
                .unwrap()
                .with_acme_challenges(Arc::new(move |token: &str| http01.get(token))),
        );
        let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http, https) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        let t1 = tokio::spawn(serve(l1, None, app.clone(), async move {
            let _ = rx1.await;
        }));
        tokio::spawn(serve(l2, Some(tls), app.clone(), async move {
            let _ = rx2.await;
        }));
        ca.validate_against(http, https);
        Wharf {
            http,
            https,
            manager: Some(manager),
            app,
            http_stop: Some((tx1, t1)),
            _https_stop: tx2,
            names: names(),
            state_dir,
            _files: files,
            _dir: dir,
        }
    }

    fn manager(&self) -> &AcmeManager {
        self.manager.as_ref().unwrap()
    }

    /// Port 80 goes away (the CA's HTTP-01 connections are refused).
    async fn stop_http(&mut self) {
        let (tx, task) = self.http_stop.take().unwrap();
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    /// Port 80 comes back on the same address.
    async fn restart_http(&mut self) {
        let l = tokio::net::TcpListener::bind(self.http).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let t = tokio::spawn(serve(l, None, self.app.clone(), async move {
            let _ = rx.await;
        }));
        self.http_stop = Some((tx, t));
    }

    fn stored(&self) -> CertInfo {
        let chain = std::fs::read_to_string(self.state_dir.join("cert.pem")).unwrap();
        CertInfo::from_pem(&chain).unwrap()
    }

    /// A TLS session to the HTTPS listener that verifies the chain against
    /// the test CA for `name`; the serial of the certificate it was shown.
    async fn connect(&self, ca: &TestCa, name: &str) -> Result<(String, Session), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(ca.roots())
            .with_no_client_auth();
        // A normal client's ALPN list must still be served while challenges are pending.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(self.https).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let serial = session_serial(&tls);
        Ok((serial, tls))
    }
}

fn session_serial(tls: &Session) -> String {
    let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
    CertInfo::from_der(leaf).unwrap().serial
}

/// One HTTP/1.1 request on a kept-alive session; (status, body).
async fn request(session: &mut Session, host: &str, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    session.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = session.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap();
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = session.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    (
        status,
        String::from_utf8(buf[head_end..head_end + len].to_vec()).unwrap(),
    )
}

async fn plain_get(addr: SocketAddr, host: &str, path: &str) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.unwrap();
    resp[9..12].parse().unwrap()
}

/// Retries `probe` for up to 40 s.
async fn wait_for<T>(what: &str, probe: impl AsyncFnMut() -> Option<T>) -> T {
    wharf_testkit::wait_for(what, Duration::from_secs(40), probe).await
}

fn mode(path: std::path::PathBuf) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_with_http01() {
    let ca = TestCa::start(Duration::from_secs(3600)).await;
    let w = Wharf::start(&ca, ChallengeKind::Http01, |_| {}).await;
    // Before ACME: the self-signed certificate, which the CA's roots refuse.
    assert!(w.connect(&ca, HOST).await.is_err());

    let info = w.manager().issue().await.unwrap();
    assert!(info.covers(&w.names), "{:?}", info.names);
    assert_eq!(w.names.len(), 3);
    for name in &w.names {
        let (serial, _) = w.connect(&ca, name).await.unwrap();
        assert_eq!(serial, info.serial, "{name}");
    }
    let stats = ca.stats();
    assert_eq!(stats.accounts, 1);
    assert_eq!(stats.issued, 1);
    assert!(
        stats.validations_failed.is_empty(),
        "{:?}",
        stats.validations_failed
    );
    let mut validated: Vec<_> = stats.validations_ok.clone();
    validated.sort();
    let mut expected: Vec<_> = w
        .names
        .iter()
        .map(|n| (n.clone(), "http-01".to_string()))
        .collect();
    expected.sort();
    assert_eq!(validated, expected);
    // The answers are withdrawn once the order is done.
    assert_eq!(stats.tokens.len(), 3);
    for t in &stats.tokens {
        let path = format!("/.well-known/acme-challenge/{t}");
        assert_eq!(plain_get(w.http, HOST, &path).await, 404);
    }
    assert_eq!(w.stored().serial, info.serial);
    for f in ["account.json", "cert.pem", "key.pem"] {
        assert_eq!(mode(w.state_dir.join(f)), 0o600, "{f}");
    }

    // The next order reuses the stored account.
    let again = w.manager().issue().await.unwrap();
    assert_ne!(again.serial, info.serial);
    assert_eq!(ca.stats().accounts, 1);
    assert_eq!(w.connect(&ca, HOST).await.unwrap().0, again.serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_with_tls_alpn01() {
    let ca = TestCa::start(Duration::from_secs(3600)).await;
    let w = Wharf::start(&ca, ChallengeKind::TlsAlpn01, |_| {}).await;
    let info = w.manager().issue().await.unwrap();
    let stats = ca.stats();
    assert!(
        stats.validations_failed.is_empty(),
        "{:?}",
        stats.validations_failed
    );
    assert_eq!(stats.validations_ok.len(), 3);
    assert!(stats.validations_ok.iter().all(|(_, k)| k == "tls-alpn-01"));
    assert!(stats.tokens.is_empty());
    for name in &w.names {
        assert_eq!(w.connect(&ca, name).await.unwrap().0, info.serial);
    }
    // With no challenge pending, acme-tls/1 is not negotiated: the
    // validation certificate is gone.
    assert_eq!(
        support::negotiated_alpn(w.https, HOST, b"acme-tls/1").await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_is_hot_swapped() {
    // Six-second certificates: renewal is due when two seconds remain.
    let ca = TestCa::start(Duration::from_secs(6)).await;
    let mut w = Wharf::start(&ca, ChallengeKind::Http01, |_| {}).await;
    let manager = w.manager.take().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(manager.run(async move {
        let _ = stopped.await;
    }));

    let (first, mut session) = wait_for("the first certificate", async || {
        w.connect(&ca, HOST).await.ok()
    })
    .await;
    let (status, body) = request(
        &mut session,
        "mta-sts.example.test",
        "/.well-known/mta-sts.txt",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("version: STSv1"), "{body}");

    let second = wait_for("a renewed certificate", async || {
        let (serial, _) = w.connect(&ca, HOST).await.ok()?;
        (serial != first).then_some(serial)
    })
    .await;
    assert!(ca.stats().issued >= 2);
    // The session opened before the swap still works, on its old certificate.
    let (status, _) = request(
        &mut session,
        "mta-sts.example.test",
        "/.well-known/mta-sts.txt",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(session_serial(&session), first);
    assert_ne!(second, first);

    stop.send(()).unwrap();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_keeps_the_old_certificate() {
    let ca = TestCa::start(Duration::from_secs(3600)).await;
    // Always due, so the loop below orders at once and after every wait.
    let mut w = Wharf::start(&ca, ChallengeKind::Http01, |s| {
        s.renew_margin = Some(Duration::from_secs(7200));
    })
    .await;
    let old = w.manager().issue().await.unwrap();

    w.stop_http().await;
    let err = w.manager().issue().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("validation failed") && text.contains("connect"),
        "{text}"
    );
    assert_eq!(w.connect(&ca, HOST).await.unwrap().0, old.serial);
    assert_eq!(w.stored().serial, old.serial);

    // The loop keeps retrying with backoff; the old certificate stays.
    let manager = w.manager.take().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(manager.run(async move {
        let _ = stopped.await;
    }));
    wait_for("two more failed orders", async || {
        (ca.stats().orders >= 4).then_some(())
    })
    .await;
    assert_eq!(ca.stats().issued, 1);
    assert_eq!(w.connect(&ca, HOST).await.unwrap().0, old.serial);
    assert_eq!(w.stored().serial, old.serial);

    // Port 80 is back: the next retry succeeds.
    w.restart_http().await;
    let new = wait_for("the retry to succeed", async || {
        let (serial, _) = w.connect(&ca, HOST).await.ok()?;
        (serial != old.serial).then_some(serial)
    })
    .await;
    assert_ne!(new, old.serial);
    stop.send(()).unwrap();
    run.await.unwrap();
}

/// What several nodes share, in memory: the state a store gives them (Wharf's own backend
/// over its database is tested in the wharf crate). Each node has its own handle, named.
#[derive(Default)]
struct Shared {
    account: Option<Vec<u8>>,
    certificate: Option<(String, String)>,
    leader: Option<(String, Instant)>,
    answers: HashMap<String, (ChallengeAnswer, Instant)>,
}

#[derive(Debug, Clone)]
struct NodeState {
    node: String,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl NodeState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl AcmeState for NodeState {
    async fn load_account(&self) -> Result<Option<Vec<u8>>, AcmeError> {
        Ok(self.lock().account.clone())
    }
    async fn save_account(&self, json: &[u8]) -> Result<(), AcmeError> {
        self.lock().account = Some(json.to_vec());
        Ok(())
    }
    async fn load_certificate(&self) -> Result<Option<(String, String)>, AcmeError> {
        Ok(self.lock().certificate.clone())
    }
    async fn save_certificate(&self, chain: &str, key: &str) -> Result<(), AcmeError> {
        self.lock().certificate = Some((chain.to_string(), key.to_string()));
        Ok(())
    }
    fn shared(&self) -> bool {
        true
    }
    async fn lead(&self, ttl: Duration) -> Result<bool, AcmeError> {
        let mut s = self.lock();
        let now = Instant::now();
        match &s.leader {
            Some((node, until)) if node != &self.node && *until > now => Ok(false),
            _ => {
                s.leader = Some((self.node.clone(), now + ttl));
                Ok(true)
            }
        }
    }
    async fn publish(&self, answer: &ChallengeAnswer, ttl: Duration) -> Result<(), AcmeError> {
        self.lock()
            .answers
            .insert(answer.id(), (answer.clone(), Instant::now() + ttl));
        Ok(())
    }
    async fn withdraw(&self, id: &str) -> Result<(), AcmeError> {
        self.lock().answers.remove(id);
        Ok(())
    }
    async fn answers(&self) -> Result<Vec<ChallengeAnswer>, AcmeError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .answers
            .values()
            .filter(|(_, until)| *until > now)
            .map(|(a, _)| a.clone())
            .collect())
    }
}

/// Two nodes share one state; the CA validates against node B only, while node A orders.
/// B serves A's challenge answers, and then the certificate A stored: one order, one
/// certificate on both nodes.
async fn two_nodes_share_one_order(kind: ChallengeKind) {
    let ca = TestCa::start(Duration::from_secs(3600)).await;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let node = |name: &str| -> Arc<dyn AcmeState> {
        Arc::new(NodeState {
            node: name.to_string(),
            shared: shared.clone(),
        })
    };
    let fast = |s: &mut AcmeSettings| s.follow_interval = Duration::from_millis(200);
    let mut a = Wharf::start_with(&ca, kind, fast, Some(node("a"))).await;
    // Started last, B is where the CA's validation connects.
    let mut b = Wharf::start_with(&ca, kind, fast, Some(node("b"))).await;
    let (stop_a, stopped_a) = oneshot::channel::<()>();
    let run_a = tokio::spawn(a.manager.take().unwrap().run(async move {
        let _ = stopped_a.await;
    }));
    wait_for("node A to lead", async || {
        shared
            .lock()
            .unwrap()
            .leader
            .as_ref()
            .is_some_and(|(n, _)| n == "a")
            .then_some(())
    })
    .await;
    let (stop_b, stopped_b) = oneshot::channel::<()>();
    let run_b = tokio::spawn(b.manager.take().unwrap().run(async move {
        let _ = stopped_b.await;
    }));
    let (on_b, _) = wait_for("node B on the CA's certificate", async || {
        b.connect(&ca, HOST).await.ok()
    })
    .await;
    let (on_a, _) = wait_for("node A on the CA's certificate", async || {
        a.connect(&ca, HOST).await.ok()
    })
    .await;
    assert_eq!(on_a, on_b, "one certificate on both nodes");
    let stats = ca.stats();
    assert_eq!(stats.issued, 1, "{stats:?}");
    assert!(stats.validations_failed.is_empty(), "{stats:?}");
    assert_eq!(stats.validations_ok.len(), names().len(), "{stats:?}");
    assert_eq!(stats.accounts, 1);
    // Answers are withdrawn once the order is over.
    wait_for("the answers withdrawn", async || {
        shared.lock().unwrap().answers.is_empty().then_some(())
    })
    .await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    run_a.await.unwrap();
    run_b.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_http01_order() {
    two_nodes_share_one_order(ChallengeKind::Http01).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_tls_alpn01_order() {
    two_nodes_share_one_order(ChallengeKind::TlsAlpn01).await;
}
