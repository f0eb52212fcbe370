//! Listeners and the life of a connection before and after its protocol
//! handler: bind, accept, PROXY v2, connection limits (per client IPv4
//! address or IPv6 /64, and global, shedding the oldest unauthenticated
//! sessions when nearly full), implicit TLS, the session task with its log
//! span, panic containment, graceful shutdown.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::conn::{BoxStream, ConnParams, within};
use crate::guard::{Gate, Registry, SHED_ABOVE_PERCENT, SessionGuards, source_key};
use crate::live::LiveLimits;
use crate::proxy::read_proxy_header;
use crate::{Conn, NetError, TlsMode, TlsProvider};

/// At most this many refused connections are being answered at once;
/// beyond it, refused connections are closed without a word so a flood
/// cannot turn refusals into work.
const MAX_REFUSING: usize = 64;
/// How long a refused client gets to read the "too busy" reply.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// After the drain deadline, how long aborted sessions get to unwind.
const ABORT_GRACE: Duration = Duration::from_secs(2);

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_session_id() -> u64 {
    SESSION_IDS.fetch_add(1, Ordering::Relaxed)
}

/// A protocol service plugged into listeners.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, conn: Conn);
    /// Bytes sent (then close) when a connection is refused by a limit,
    /// e.g. `b"421 4.7.0 Too many connections\r\n"`.
    fn too_busy(&self) -> &'static [u8];
    /// The `protocol` label of this handler's sessions in `/metrics`
    /// (`smtp`, `imap`, `pop3`); a fixed name keeps the label set bounded.
    fn protocol(&self) -> &'static str {
        "other"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Shown in logs and by [`Conn::listener_name`], e.g. "submission".
    pub name: String,
    pub addr: SocketAddr,
    pub tls: TlsMode,
    /// Every connection starts with a PROXY v2 header (behind a load
    /// balancer); a connection without a valid one is closed.
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions at once over all listeners; 0 = unlimited.
    pub max_connections: usize,
    /// Sessions at once from one client (after PROXY v2): one IPv4 address,
    /// or one IPv6 /64; 0 = unlimited.
    pub max_per_ip: usize,
    /// A read or write waiting longer than this ends with `TimedOut`;
    /// zero = no limit.
    pub idle_timeout: Duration,
    /// Bound on a TLS handshake (implicit or STARTTLS) and on reading the
    /// PROXY header; zero = no limit.
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_per_ip: 50,
            idle_timeout: Duration::from_secs(600),
            tls_handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// State shared by every listener and session of one server.
struct Shared {
    active: AtomicUsize,
    drained: Notify,
    /// Keyed by [`source_key`].
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refusing: AtomicUsize,
    /// Unauthenticated sessions of the listeners that shed.
    unauthenticated: Arc<Registry>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            active: AtomicUsize::new(0),
            drained: Notify::new(),
            per_ip: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
            unauthenticated: Arc::new(Registry::default()),
        }
    }

    /// Admits a session under `max`; at the limit, while some session could
    /// be shed to make room, lets it in over the limit by at most a tenth
    /// (the session then sheds one once it passed its per-IP check, see
    /// [`Shared::make_room`], and the shed one ends within the goodbye grace).
    fn admit(self: &Arc<Self>, max: usize) -> Option<ActiveGuard> {
        self.try_admit(max).or_else(|| {
            (max > 0 && self.unauthenticated.has_candidates())
                .then(|| self.try_admit(max + (max / 10).max(1)))
                .flatten()
        })
    }

    /// For a session just admitted, and past its per-IP check (so a client
    /// refused by its own limit cannot close other people's sessions): above
    /// 90 % of `max` without it, sheds the oldest unauthenticated session.
    fn make_room(&self, max: usize) {
        let others = self.active.load(Ordering::Acquire).saturating_sub(1);
        if max > 0 && others * 100 >= max * SHED_ABOVE_PERCENT {
            self.unauthenticated.shed_oldest();
        }
    }

    /// Counts a session; with `max > 0` refuses when `max` are running.
    fn try_admit(self: &Arc<Self>, max: usize) -> Option<ActiveGuard> {
        let ok = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok();
        ok.then(|| ActiveGuard(Arc::clone(self)))
    }

    fn try_ip(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpGuard> {
        let ip = source_key(ip);
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            if *n == 0 {
                map.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(IpGuard(Arc::clone(self), ip))
    }

    fn try_refuse(self: &Arc<Self>) -> Option<RefusalGuard> {
        let ok = self
            .refusing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_REFUSING).then_some(n + 1)
            })
            .is_ok();
        ok.then(|| RefusalGuard(Arc::clone(self)))
    }

    /// Waits until no session runs, or `until` passes; true when drained.
    async fn wait_idle(&self, until: Instant) -> bool {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::Acquire) == 0 {
                return true;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(until) => {
                    return self.active.load(Ordering::Acquire) == 0;
                }
            }
        }
    }
}

struct ActiveGuard(Arc<Shared>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

struct IpGuard(Arc<Shared>, IpAddr);
impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut map = self.0.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

/// Counts a running session in `wharf_sessions_active` until dropped.
struct SessionGauge(&'static str);
impl SessionGauge {
    fn open(protocol: &'static str) -> SessionGauge {
        metrics::gauge!("wharf_sessions_active", "protocol" => protocol).increment(1.0);
        SessionGauge(protocol)
    }
}
impl Drop for SessionGauge {
    fn drop(&mut self) {
        metrics::gauge!("wharf_sessions_active", "protocol" => self.0).decrement(1.0);
    }
}

fn count_refusal(listener: &Arc<str>, reason: &'static str) {
    metrics::counter!(
        "wharf_connections_refused_total",
        "listener" => Arc::clone(listener),
        "reason" => reason
    )
    .increment(1);
}

struct RefusalGuard(Arc<Shared>);
impl Drop for RefusalGuard {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Per-IP limits count a client once however it reaches a dual-stack socket.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// What every session of one listener needs.
struct ListenerCtx {
    name: Arc<str>,
    local: SocketAddr,
    mode: TlsMode,
    proxy: bool,
    handler: Arc<dyn Handler>,
    tls: Option<TlsProvider>,
    /// Read once per connection, when it arrives: a reload applies to the next one.
    live: LiveLimits,
    /// This listener's own guards (`bind_with_guards`); `None` follows `live`.
    guards: Option<SessionGuards>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    shutdown_tx: Arc<watch::Sender<bool>>,
    kill: watch::Receiver<bool>,
}

struct PendingListener {
    listener: TcpListener,
    ctx: Arc<ListenerCtx>,
}

/// Binds every listener first (so a bad port fails the start before
/// anything accepts), then serves.
pub struct Server {
    tls: Option<TlsProvider>,
    live: LiveLimits,
    shared: Arc<Shared>,
    pending: Vec<PendingListener>,
    bound: Vec<(String, SocketAddr, TlsMode)>,
    accept_tasks: Vec<JoinHandle<()>>,
    shutdown_tx: Arc<watch::Sender<bool>>,
    kill_tx: watch::Sender<bool>,
}

/// A server dropped without [`Server::shutdown`] stops accepting; sessions
/// already running go on to their natural end.
impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.accept_tasks {
            t.abort();
        }
    }
}

impl Server {
    pub fn new(tls: Option<TlsProvider>, limits: Limits) -> Server {
        Server {
            tls,
            live: LiveLimits::new(limits, SessionGuards::OFF),
            shared: Arc::new(Shared::new()),
            pending: Vec::new(),
            bound: Vec::new(),
            accept_tasks: Vec::new(),
            shutdown_tx: Arc::new(watch::channel(false).0),
            kill_tx: watch::channel(false).0,
        }
    }

    /// The guards of every listener bound with [`Server::bind`]
    /// ([`SessionGuards::OFF`] until set), for connections accepted from now on.
    pub fn set_session_guards(&mut self, guards: SessionGuards) {
        self.live.set_guards(guards);
    }

    /// The handle a configuration reload swaps the limits and the default guards through,
    /// while the listeners keep accepting (see [`LiveLimits`] for what applies to whom).
    pub fn live_limits(&self) -> LiveLimits {
        self.live.clone()
    }

    /// Binds `spec.addr` (port 0 picks a free port) and returns the bound
    /// address. Fails with [`NetError::Bind`] naming the address (and the fix
    /// for EACCES on a port below 1024), or [`NetError::Config`] when the
    /// listener wants TLS and the server has no certificate.
    pub async fn bind(
        &mut self,
        spec: ListenerSpec,
        handler: Arc<dyn Handler>,
    ) -> Result<SocketAddr, NetError> {
        self.bind_inner(spec, handler, None).await
    }

    /// [`Server::bind`] with this listener's own guards, which a reload of the server's
    /// guards does not change.
    pub async fn bind_with_guards(
        &mut self,
        spec: ListenerSpec,
        handler: Arc<dyn Handler>,
        guards: SessionGuards,
    ) -> Result<SocketAddr, NetError> {
        self.bind_inner(spec, handler, Some(guards)).await
    }

    async fn bind_inner(
        &mut self,
        spec: ListenerSpec,
        handler: Arc<dyn Handler>,
        guards: Option<SessionGuards>,
    ) -> Result<SocketAddr, NetError> {
        if spec.tls != TlsMode::None && self.tls.is_none() {
            return Err(NetError::Config {
                listener: spec.name,
                reason: format!(
                    "tls = \"{}\" needs a certificate, but none is configured",
                    spec.tls
                ),
            });
        }
        let listener = TcpListener::bind(spec.addr)
            .await
            .map_err(|source| NetError::Bind {
                addr: spec.addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| NetError::Bind {
            addr: spec.addr,
            source,
        })?;
        self.bound.push((spec.name.clone(), local, spec.tls));
        self.pending.push(PendingListener {
            listener,
            ctx: Arc::new(ListenerCtx {
                name: Arc::from(spec.name.as_str()),
                local,
                mode: spec.tls,
                proxy: spec.proxy_protocol,
                handler,
                tls: self.tls.clone(),
                live: self.live.clone(),
                guards,
                shared: Arc::clone(&self.shared),
                shutdown: self.shutdown_tx.subscribe(),
                shutdown_tx: Arc::clone(&self.shutdown_tx),
                kill: self.kill_tx.subscribe(),
            }),
        });
        Ok(local)
    }

    /// Spawns the accept loop of every listener bound so far.
    pub fn start(&mut self) {
        for p in self.pending.drain(..) {
            tracing::info!(
                listener = %p.ctx.name,
                addr = %p.ctx.local,
                tls = %p.ctx.mode,
                proxy_protocol = p.ctx.proxy,
                "listening"
            );
            self.accept_tasks
                .push(tokio::spawn(accept_loop(p.listener, p.ctx)));
        }
    }

    /// (name, bound address, TLS mode) of every listener.
    pub fn bound(&self) -> Vec<(String, SocketAddr, TlsMode)> {
        self.bound.clone()
    }

    /// Sessions running now.
    pub fn active_sessions(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Stops accepting (the ports are free when this returns), signals
    /// sessions through [`Conn::shutdown_signal`], waits up to `deadline`
    /// for them to end, then aborts the rest.
    pub async fn shutdown(mut self, deadline: Duration) {
        let until = Instant::now() + deadline;
        self.shutdown_tx.send_replace(true);
        self.pending.clear();
        for t in self.accept_tasks.drain(..) {
            let _ = t.await;
        }
        let running = self.shared.active.load(Ordering::Acquire);
        if running > 0 {
            tracing::info!(sessions = running, "draining sessions");
        }
        if !self.shared.wait_idle(until).await {
            tracing::warn!(
                sessions = self.shared.active.load(Ordering::Acquire),
                "drain deadline passed; aborting remaining sessions"
            );
            self.kill_tx.send_replace(true);
            if !self.shared.wait_idle(Instant::now() + ABORT_GRACE).await {
                tracing::warn!(
                    sessions = self.shared.active.load(Ordering::Acquire),
                    "sessions still unwinding after abort"
                );
            }
        }
        tracing::info!("server stopped");
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<ListenerCtx>) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|v| *v) => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => admit(&ctx, stream, canonical(peer)),
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS and aborted handshakes are transient;
                // pause briefly so a descriptor shortage does not spin.
                tracing::warn!(listener = %ctx.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!(listener = %ctx.name, addr = %ctx.local, "listener closed");
}

fn admit(ctx: &Arc<ListenerCtx>, stream: TcpStream, socket_peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY failed");
    }
    let id = next_session_id();
    metrics::counter!("wharf_connections_total", "listener" => Arc::clone(&ctx.name)).increment(1);
    let (limits, default_guards) = ctx.live.snapshot();
    let guards = ctx.guards.unwrap_or(default_guards);
    let Some(active) = ctx.shared.admit(limits.max_connections) else {
        count_refusal(&ctx.name, "server_limit");
        tracing::warn!(
            id,
            listener = %ctx.name,
            peer = %socket_peer,
            limit = limits.max_connections,
            "connection refused: server connection limit"
        );
        if let Some(guard) = ctx.shared.try_refuse() {
            let ctx = Arc::clone(ctx);
            tokio::spawn(async move {
                let _guard = guard;
                refuse(&ctx, &limits, Box::new(stream)).await;
            });
        }
        return;
    };
    let span = tracing::info_span!(
        "session",
        id,
        listener = %ctx.name,
        peer = tracing::field::Empty,
    );
    let ctx = Arc::clone(ctx);
    tokio::spawn(
        async move {
            let mut kill = ctx.kill.clone();
            tokio::select! {
                biased;
                _ = async {
                    if kill.wait_for(|v| *v).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => tracing::warn!("session aborted at shutdown"),
                _ = session(&ctx, &limits, guards, stream, socket_peer, id, active) => {}
            }
        }
        .instrument(span),
    );
}

async fn session(
    ctx: &ListenerCtx,
    limits: &Limits,
    guards: SessionGuards,
    stream: TcpStream,
    socket_peer: SocketAddr,
    id: u64,
    // Held for the whole session: it is what the global limit and the
    // shutdown drain count.
    active: ActiveGuard,
) {
    let mut stream: BoxStream = Box::new(stream);
    let timeout = limits.tls_handshake_timeout;
    let peer = if ctx.proxy {
        match within(timeout, read_proxy_header(&mut stream)).await {
            Ok(Ok(h)) => canonical(h.client(socket_peer)),
            Ok(Err(e)) => {
                tracing::info!(via = %socket_peer, error = %e, "PROXY header rejected; closing");
                return;
            }
            Err(_) => {
                tracing::info!(via = %socket_peer, "no PROXY header in time; closing");
                return;
            }
        }
    } else {
        socket_peer
    };
    tracing::Span::current().record("peer", tracing::field::display(peer));

    let Some(_ip_slot) = ctx.shared.try_ip(peer.ip(), limits.max_per_ip) else {
        tracing::warn!(
            limit = limits.max_per_ip,
            "connection refused: per-IP connection limit"
        );
        count_refusal(&ctx.name, "ip_limit");
        // A refusal is not a session: it gives its server-wide slot back at
        // once and counts against the refusal cap instead.
        drop(active);
        if let Some(_guard) = ctx.shared.try_refuse() {
            refuse(ctx, limits, stream).await;
        }
        return;
    };

    ctx.shared.make_room(limits.max_connections);
    let _gauge = SessionGauge::open(ctx.handler.protocol());
    let registry = guards
        .shed_unauthenticated
        .then(|| Arc::clone(&ctx.shared.unauthenticated));
    let gate = Gate::new(id, Arc::clone(&ctx.name), guards.pre_auth_timeout, registry);
    let params = ConnParams {
        peer,
        local: ctx.local,
        listener: Arc::clone(&ctx.name),
        mode: ctx.mode,
        tls: ctx.tls.clone(),
        idle_timeout: limits.idle_timeout,
        handshake_timeout: timeout,
        shutdown: ctx.shutdown.clone(),
        shutdown_keepalive: Arc::clone(&ctx.shutdown_tx),
        session_id: id,
        gate: Arc::clone(&gate),
        guards,
    };
    let conn = if ctx.mode == TlsMode::Implicit {
        match implicit_handshake(ctx, timeout, stream).await {
            Some(tls) => Conn::tls(tls, params),
            None => return,
        }
    } else {
        Conn::plain(stream, params)
    };
    let tls = conn
        .tls_info()
        .map(|i| (i.version.clone(), i.cipher.clone()));
    match (&tls, ctx.proxy) {
        (Some((v, c)), false) => tracing::info!(tls = %v, cipher = %c, "connection opened"),
        (Some((v, c)), true) => {
            tracing::info!(tls = %v, cipher = %c, via = %socket_peer, "connection opened")
        }
        (None, false) => tracing::info!("connection opened"),
        (None, true) => tracing::info!(via = %socket_peer, "connection opened"),
    }
    let started = Instant::now();
    // A shed session whose handler does not end on its own within the
    // goodbye grace (busy outside a read) is dropped.
    let outcome = tokio::select! {
        o = CatchUnwind(ctx.handler.handle(conn)) => Some(o),
        _ = gate.evicted_and_graced() => None,
    };
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        None => tracing::info!(duration_ms = ms, "connection closed: shed"),
        Some(Ok(())) => tracing::info!(duration_ms = ms, "connection closed"),
        Some(Err(panic)) => tracing::error!(
            duration_ms = ms,
            panic = panic_message(&panic),
            "connection closed: handler panicked"
        ),
    }
}

async fn implicit_handshake(
    ctx: &ListenerCtx,
    timeout: Duration,
    stream: BoxStream,
) -> Option<crate::conn::TlsStream> {
    let provider = ctx.tls.as_ref()?;
    match within(timeout, provider.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            None
        }
    }
}

/// Sends the handler's "too busy" reply (over TLS on implicit-TLS
/// listeners, where the client could not read it otherwise), then closes
/// gracefully: FIN first and a short drain, so unread client bytes do not
/// turn the close into a reset that destroys the reply in flight.
async fn refuse(ctx: &ListenerCtx, limits: &Limits, stream: BoxStream) {
    let reply = ctx.handler.too_busy();
    let handshake = if limits.tls_handshake_timeout.is_zero() {
        Duration::from_secs(30)
    } else {
        limits.tls_handshake_timeout
    };
    let work = async {
        let mut stream: BoxStream = if ctx.mode == TlsMode::Implicit {
            match implicit_handshake(ctx, limits.tls_handshake_timeout, stream).await {
                Some(tls) => Box::new(tls),
                None => return,
            }
        } else {
            stream
        };
        if stream.write_all(reply).await.is_err() || stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 512];
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    // Refusals are always bounded, whatever the configured limits say.
    let budget = if ctx.mode == TlsMode::Implicit {
        handshake + REFUSAL_LINGER
    } else {
        REFUSAL_LINGER
    };
    let _ = tokio::time::timeout(budget, work).await;
}

/// Runs a handler future, turning a panic into an error value so one broken
/// session is logged and cleaned up like any other.
struct CatchUnwind<'a>(Pin<Box<dyn Future<Output = ()> + Send + 'a>>);

impl Future for CatchUnwind<'_> {
    type Output = Result<(), Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(p: &Box<dyn Any + Send>) -> &str {
    if let Some(s) = p.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:25".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.1:25".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:25".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn per_ip_slots_are_released() {
        let shared = Arc::new(Shared::new());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = shared.try_ip(ip, 2).unwrap();
        let b = shared.try_ip(ip, 2).unwrap();
        assert!(shared.try_ip(ip, 2).is_none());
        assert!(shared.try_ip("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(a);
        let c = shared.try_ip(ip, 2).unwrap();
        // One IPv6 /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let d = shared.try_ip(v6("2001:db8:1:2::a"), 2).unwrap();
        let e = shared.try_ip(v6("2001:db8:1:2:ffff::b"), 2).unwrap();
        assert!(shared.try_ip(v6("2001:db8:1:2::c"), 2).is_none());
        assert!(shared.try_ip(v6("2001:db8:1:3::a"), 2).is_some());
        drop((b, c, d, e));
        // No entry is left behind for an address that has gone.
        assert!(shared.per_ip.lock().unwrap().is_empty());
        let g = shared.try_admit(1).unwrap();
        assert!(shared.try_admit(1).is_none());
        drop(g);
        assert!(shared.try_admit(1).is_some());
    }
}
