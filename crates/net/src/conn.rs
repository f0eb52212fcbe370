//! One client connection as protocol sessions see it: a bounded, buffered,
//! upgradable byte stream with an idle timeout on every read and write.
//!
//! The input buffer lives inside the [`Transport`] together with the stream
//! it was filled from, and the only way to get the raw stream back for a
//! STARTTLS handshake consumes the transport, buffer included. Plaintext
//! pipelined after STARTTLS therefore cannot survive into the TLS session
//! (CVE-2011-0411) by construction, not by a `clear()` someone might forget.
//!
//! Every read also answers to the session's guards ([`crate::guard`]): the
//! pre-authentication deadline until the protocol calls
//! [`Conn::set_authenticated`], the minimum rate between
//! [`Conn::begin_bulk_input`] and [`Conn::end_bulk_input`], and shedding. A
//! read cut by them fails with `TimedOut`, like an idle timeout.
//!
//! Why one long file: the buffer, the transport and the guard checks on every read are one
//! type on purpose — the STARTTLS guarantee above holds only because nothing outside this file
//! can reach the stream without the buffer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BufMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::guard::{BulkMeter, Gate, SessionGuards};
use crate::tls::{TlsInfo, TlsMode, TlsProvider};

/// Reads are done in chunks of at most this many bytes, and the input
/// buffer starts at this size.
const READ_CHUNK: usize = 4096;
/// An emptied buffer that grew past this (a long line) is given back.
const SHRINK_ABOVE: usize = 16 * 1024;
/// Default cap for [`Conn::fill`]; raise it with [`Conn::set_max_buffer`].
const DEFAULT_MAX_BUFFER: usize = 64 * 1024;
/// How long a dropped connection may linger to deliver its last bytes.
const LINGER: Duration = Duration::from_secs(2);
/// Most client bytes a lingering close reads and drops.
const LINGER_DRAIN: usize = 256 * 1024;
/// Most connections lingering at once; past it, a drop closes at once.
const MAX_LINGERING: usize = 1024;
static LINGERING: AtomicUsize = AtomicUsize::new(0);
/// Largest single allocation step while reading a literal, so a client that
/// announces a huge size costs memory only as bytes actually arrive.
const LITERAL_STEP: usize = 64 * 1024;

/// Any byte stream a connection can run over (TCP in production, an
/// in-memory pipe in tests).
pub(crate) trait RawStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> RawStream for T {}

pub(crate) type BoxStream = Box<dyn RawStream>;
pub(crate) type TlsStream = tokio_rustls::server::TlsStream<BoxStream>;

/// Result of [`Conn::read_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line including its terminating LF (and the CR before it, if sent).
    Complete(Vec<u8>),
    /// The line exceeded the limit; it was discarded through its LF.
    TooLong,
    /// The peer closed the connection (a final unterminated fragment is dropped).
    Eof,
}

enum Io {
    Plain(BoxStream),
    Tls(Box<TlsStream>),
    /// COMPRESS=DEFLATE over the plain or TLS stream.
    Deflate(Box<crate::deflate::Deflated>),
    /// After a failed STARTTLS handshake: the stream is gone.
    Closed,
}

/// Bytes received and not yet consumed: `buf[pos..]`.
struct InputBuffer {
    buf: Vec<u8>,
    pos: usize,
}

impl InputBuffer {
    fn new() -> Self {
        InputBuffer {
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > SHRINK_ABOVE {
                self.buf.shrink_to(READ_CHUNK);
            }
        }
    }

    fn clear(&mut self) {
        let n = self.len();
        self.consume(n);
    }

    /// Makes room for `want` more bytes without changing what is buffered.
    fn reserve(&mut self, want: usize) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve_exact(want);
    }
}

/// The stream and the bytes read from it, kept together (see module doc).
struct Transport {
    io: Io,
    input: InputBuffer,
    eof: bool,
    /// Inside a too-long line: the bytes up to its LF are not a command.
    /// Kept here, not in a local, so a cancelled `read_line` resumes the
    /// discard instead of handing the line's tail back as a new line.
    discarding_line: bool,
}

impl Transport {
    fn new(io: Io) -> Self {
        Transport {
            io,
            input: InputBuffer::new(),
            eof: false,
            discarding_line: false,
        }
    }

    /// Gives up the plaintext stream for a TLS handshake. Consumes the
    /// transport, so whatever was buffered is dropped with it.
    fn into_plain_stream(self) -> Result<(BoxStream, usize), Transport> {
        match self.io {
            Io::Plain(s) => Ok((s, self.input.len())),
            _ => Err(self),
        }
    }

    /// Reads at most `want` more bytes into the buffer. Cancel-safe: the
    /// buffer only grows by bytes that were actually read, so a caller may
    /// race this against a timer or a shutdown signal.
    async fn read_more(&mut self, want: usize, guard: ReadGuard<'_>) -> io::Result<usize> {
        if self.eof || want == 0 {
            return Ok(0);
        }
        self.input.reserve(want);
        let mut dst = (&mut self.input.buf).limit(want);
        let fut = async {
            match &mut self.io {
                Io::Plain(s) => s.read_buf(&mut dst).await,
                Io::Tls(s) => s.read_buf(&mut dst).await,
                Io::Deflate(s) => s.read_buf(&mut dst).await,
                Io::Closed => Err(closed()),
            }
        };
        let n = guard.wait(fut).await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }
}

/// A transport without its stream (to put one back after a refused change).
fn transport_rest(input: InputBuffer, eof: bool) -> Transport {
    Transport {
        io: Io::Closed,
        input,
        eof,
        discarding_line: false,
    }
}

/// The [`ReadGuard`] of a `Conn`, borrowing only the fields it needs so
/// that the transport stays free for the read itself.
macro_rules! read_guard {
    ($conn:ident) => {
        ReadGuard {
            gate: &$conn.gate,
            bulk: &mut $conn.bulk,
            idle: $conn.idle_timeout,
        }
    };
}

/// What one read answers to besides the socket: the idle timeout and the
/// session's guards.
struct ReadGuard<'a> {
    gate: &'a Gate,
    bulk: &'a mut Option<BulkMeter>,
    idle: Duration,
}

impl ReadGuard<'_> {
    /// Waits for `read` (cancel-safe, so it is polled across guard checks)
    /// until it completes, the idle timeout passes, or a guard cuts the
    /// session (deadline, too slow, shed).
    async fn wait<F>(mut self, read: F) -> io::Result<usize>
    where
        F: std::future::Future<Output = io::Result<usize>>,
    {
        tokio::pin!(read);
        let idle_until = (!self.idle.is_zero()).then(|| Instant::now() + self.idle);
        loop {
            let shed = self.gate.notified();
            tokio::pin!(shed);
            shed.as_mut().enable();
            let waiting_since = Instant::now();
            let guard_until = self
                .gate
                .read_until(self.bulk.as_mut(), waiting_since)
                .map_err(|cut| self.gate.cut(cut))?;
            let until = match (idle_until, guard_until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                r = &mut read => {
                    let n = r?;
                    self.account(waiting_since, n)?;
                    return Ok(n);
                }
                _ = sleep_until(until) => {
                    if idle_until.is_some_and(|i| Instant::now() >= i) {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                    }
                    self.account(waiting_since, 0)?;
                }
                _ = &mut shed => {}
            }
        }
    }
}

impl ReadGuard<'_> {
    /// Counts a wait and what it brought towards the minimum rate of bulk input.
    fn account(&mut self, waiting_since: Instant, n: usize) -> io::Result<()> {
        match self.bulk.as_mut() {
            Some(meter) => meter
                .account(waiting_since.elapsed(), n)
                .map_err(|cut| self.gate.cut(cut)),
            None => Ok(()),
        }
    }
}

async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// `tokio::time::timeout`, except that a zero duration means "no limit"
/// (a configured 0 must not turn every read into an instant timeout).
pub(crate) async fn within<F: std::future::Future>(
    limit: Duration,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    if limit.is_zero() {
        Ok(fut.await)
    } else {
        tokio::time::timeout(limit, fut).await
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

/// Everything a connection is created with, besides its stream.
pub(crate) struct ConnParams {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub listener: Arc<str>,
    pub mode: TlsMode,
    pub tls: Option<TlsProvider>,
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
    pub shutdown: watch::Receiver<bool>,
    /// Keeps the shutdown channel open while the connection lives, so a
    /// dropped `Server` never looks like a shutdown to the session.
    pub shutdown_keepalive: Arc<watch::Sender<bool>>,
    pub session_id: u64,
    pub gate: Arc<Gate>,
    pub guards: SessionGuards,
}

/// One client connection: a buffered, upgradable byte stream.
pub struct Conn {
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    listener: Arc<str>,
    mode: TlsMode,
    tls: Option<TlsProvider>,
    tls_info: Option<TlsInfo>,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    max_buffer: usize,
    shutdown: watch::Receiver<bool>,
    /// Keeps the shutdown channel open (see [`ConnParams`]), so
    /// `shutdown_signal().changed()` waits instead of failing at once.
    _shutdown_keepalive: Arc<watch::Sender<bool>>,
    session_id: u64,
    gate: Arc<Gate>,
    guards: SessionGuards,
    /// Set between `begin_bulk_input` and `end_bulk_input`.
    bulk: Option<BulkMeter>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("session", &self.session_id)
            .field("listener", &self.listener)
            .field("peer", &self.peer)
            .field("tls", &self.tls_info)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(crate) fn plain(stream: BoxStream, p: ConnParams) -> Conn {
        Conn::build(Io::Plain(stream), None, p)
    }

    pub(crate) fn tls(stream: TlsStream, p: ConnParams) -> Conn {
        let info = TlsInfo::from_connection(stream.get_ref().1);
        Conn::build(Io::Tls(Box::new(stream)), Some(info), p)
    }

    fn build(io: Io, tls_info: Option<TlsInfo>, p: ConnParams) -> Conn {
        Conn {
            transport: Transport::new(io),
            peer: p.peer,
            local: p.local,
            listener: p.listener,
            mode: p.mode,
            tls: p.tls,
            tls_info,
            idle_timeout: p.idle_timeout,
            handshake_timeout: p.handshake_timeout,
            max_buffer: DEFAULT_MAX_BUFFER,
            shutdown: p.shutdown,
            _shutdown_keepalive: p.shutdown_keepalive,
            session_id: p.session_id,
            gate: p.gate,
            guards: p.guards,
            bulk: None,
        }
    }

    /// A plaintext connection over any stream, outside a [`crate::Server`]
    /// (tests of protocol crates, tools). `mode` and `tls` decide whether
    /// [`Conn::start_tls`] is available. Idle timeout 5 minutes, handshake
    /// timeout 30 seconds; the shutdown signal never fires.
    pub fn from_stream<S>(
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
        listener_name: &str,
        mode: TlsMode,
        tls: Option<TlsProvider>,
    ) -> Conn
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = watch::channel(false);
        let session_id = crate::server::next_session_id();
        let listener: Arc<str> = Arc::from(listener_name);
        Conn::plain(
            Box::new(stream),
            ConnParams {
                peer,
                local,
                listener: Arc::clone(&listener),
                mode,
                tls,
                idle_timeout: Duration::from_secs(300),
                handshake_timeout: Duration::from_secs(30),
                shutdown: rx,
                shutdown_keepalive: Arc::new(tx),
                session_id,
                gate: Gate::open_ended(session_id, listener),
                guards: SessionGuards::OFF,
            },
        )
    }

    /// The real client (after PROXY v2 when the listener uses it).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn listener_name(&self) -> &str {
        &self.listener
    }

    /// Process-unique id of this connection, the `id` field of its log span.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    pub fn is_tls(&self) -> bool {
        self.tls_info.is_some()
    }

    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls_info.as_ref()
    }

    /// The listener is STARTTLS, a certificate is configured, and the
    /// connection is still plaintext.
    pub fn starttls_available(&self) -> bool {
        self.mode == TlsMode::StartTls
            && self.tls.is_some()
            && self.tls_info.is_none()
            && matches!(self.transport.io, Io::Plain(_))
    }

    /// Per-read and per-write limit from now on (IMAP IDLE may want longer);
    /// zero = no limit.
    pub fn set_idle_timeout(&mut self, d: Duration) {
        self.idle_timeout = d;
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The protocol loop's report that the client has authenticated: the
    /// pre-authentication deadline no longer applies and the session is no
    /// longer shed to make room. Call it once the login succeeded (AUTH,
    /// LOGIN, USER/PASS). Port 25, where nobody authenticates, calls it once
    /// the session's first message was accepted (see the crate doc).
    pub fn set_authenticated(&self) {
        self.gate.set_authenticated();
    }

    pub fn is_authenticated(&self) -> bool {
        self.gate.is_authenticated()
    }

    /// Starts a bulk transfer (SMTP DATA/BDAT body, IMAP APPEND literal):
    /// until [`Conn::end_bulk_input`], reads are held to the listener's
    /// minimum rate instead of the pre-authentication deadline, whose clock
    /// stops meanwhile. A second call while a transfer runs changes nothing.
    pub fn begin_bulk_input(&mut self) {
        if self.bulk.is_none() {
            self.bulk = Some(BulkMeter::new(&self.guards, Instant::now()));
        }
    }

    /// Ends the bulk transfer begun by [`Conn::begin_bulk_input`] (harmless
    /// without one).
    pub fn end_bulk_input(&mut self) {
        if let Some(meter) = self.bulk.take() {
            self.gate.postpone(meter.started().elapsed());
        }
    }

    /// Until when a write may wait: the idle timeout, and for a session the
    /// guards cut (or are about to) only the goodbye grace.
    fn write_until(&self) -> Option<Instant> {
        let now = Instant::now();
        let idle = (!self.idle_timeout.is_zero()).then(|| now + self.idle_timeout);
        match (idle, self.gate.write_until(self.bulk.is_some(), now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Most bytes [`Conn::fill`] will hold unconsumed (default 64 KiB).
    /// `read_line`, `read_exact_bytes` and `discard_exact` are bounded by
    /// their own arguments instead.
    pub fn set_max_buffer(&mut self, n: usize) {
        self.max_buffer = n.max(1);
    }

    /// Reads more bytes into the internal buffer; Ok(0) = EOF. Errors with
    /// `TimedOut` after the idle timeout, and with `InvalidData` when the
    /// buffer already holds the maximum (consume first). Cancel-safe.
    pub async fn fill(&mut self) -> io::Result<usize> {
        let len = self.transport.input.len();
        if len >= self.max_buffer {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "input buffer limit reached",
            ));
        }
        let want = (self.max_buffer - len).min(READ_CHUNK);
        self.transport.read_more(want, read_guard!(self)).await
    }

    /// Bytes received and not consumed.
    pub fn buffer(&self) -> &[u8] {
        self.transport.input.data()
    }

    pub fn consume(&mut self, n: usize) {
        self.transport.input.consume(n);
    }

    /// Bytes the input buffer holds allocated now (memory accounting, tests).
    pub fn buffer_capacity(&self) -> usize {
        self.transport.input.buf.capacity()
    }

    /// One line ending in LF, returned with its CRLF/LF. The whole line,
    /// terminator included, may be at most `max` bytes, and the buffer never
    /// grows past `max` to find it. A longer line is read and discarded up to
    /// and including its LF, and `Line::TooLong` is returned.
    ///
    /// Cancel-safe: it may lose a `select!` race (shutdown signal, timer)
    /// without losing or corrupting input.
    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let max = max.max(1);
        if self.transport.discarding_line {
            return self.discard_rest_of_line().await;
        }
        let mut scanned = 0;
        loop {
            let data = self.transport.input.data();
            let window = &data[..data.len().min(max)];
            if let Some(i) = window[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                let line = data[..end].to_vec();
                self.transport.input.consume(end);
                return Ok(Line::Complete(line));
            }
            scanned = window.len();
            if data.len() >= max {
                self.transport.input.consume(max);
                self.transport.discarding_line = true;
                return self.discard_rest_of_line().await;
            }
            // Grow in small steps: a 64 KiB line limit must not cost every
            // idle connection 64 KiB.
            let want = (max - data.len()).min(READ_CHUNK);
            if self.transport.read_more(want, read_guard!(self)).await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Drops input through the next LF, then reports the line as too long.
    async fn discard_rest_of_line(&mut self) -> io::Result<Line> {
        loop {
            let input = &mut self.transport.input;
            match input.data().iter().position(|&b| b == b'\n') {
                Some(i) => {
                    input.consume(i + 1);
                    self.transport.discarding_line = false;
                    return Ok(Line::TooLong);
                }
                None => input.clear(),
            }
            if self
                .transport
                .read_more(READ_CHUNK, read_guard!(self))
                .await?
                == 0
            {
                self.transport.discarding_line = false;
                return Ok(Line::TooLong);
            }
        }
    }

    /// Exactly `n` bytes (literals, BDAT chunks); Ok(None) on EOF before
    /// they all arrived. Memory grows with the bytes received, not with `n`.
    /// Not cancel-safe (like `AsyncReadExt::read_exact`): do not race it.
    pub async fn read_exact_bytes(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        let buffered = self.transport.input.len().min(n);
        let mut out = Vec::with_capacity(n.min(LITERAL_STEP).max(buffered));
        out.extend_from_slice(&self.transport.input.data()[..buffered]);
        self.transport.input.consume(buffered);
        while out.len() < n {
            if self.transport.eof {
                return Ok(None);
            }
            let want = (n - out.len()).min(LITERAL_STEP);
            out.reserve_exact(want);
            let mut dst = (&mut out).limit(want);
            let fut = async {
                match &mut self.transport.io {
                    Io::Plain(s) => s.read_buf(&mut dst).await,
                    Io::Tls(s) => s.read_buf(&mut dst).await,
                    Io::Deflate(s) => s.read_buf(&mut dst).await,
                    Io::Closed => Err(closed()),
                }
            };
            let guard = ReadGuard {
                gate: &self.gate,
                bulk: &mut self.bulk,
                idle: self.idle_timeout,
            };
            let got = guard.wait(fut).await?;
            if got == 0 {
                self.transport.eof = true;
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    /// Reads and drops exactly `n` bytes without keeping them (oversized
    /// literal or BDAT chunk); Ok(false) on EOF first. Not cancel-safe.
    pub async fn discard_exact(&mut self, n: usize) -> io::Result<bool> {
        let buffered = self.transport.input.len().min(n);
        self.transport.input.consume(buffered);
        let mut left = n - buffered;
        while left > 0 {
            let got = self
                .transport
                .read_more(left.min(READ_CHUNK), read_guard!(self))
                .await?;
            if got == 0 {
                return Ok(false);
            }
            self.transport.input.consume(got);
            left -= got;
        }
        Ok(true)
    }

    /// Writes everything (or fails with `TimedOut` after the idle timeout of
    /// a peer that does not read; before authentication, at the latest a
    /// few seconds after the pre-authentication deadline). Nothing is held back: no flush is needed
    /// for the bytes to leave, though [`Conn::flush`] is harmless.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let until = self.write_until();
        let fut = async {
            match &mut self.transport.io {
                Io::Plain(s) => s.write_all(data).await,
                Io::Tls(s) => {
                    s.write_all(data).await?;
                    s.flush().await
                }
                Io::Deflate(s) => s.write_all(data).await,
                Io::Closed => Err(closed()),
            }
        };
        match until {
            None => fut.await,
            Some(t) => match tokio::time::timeout_at(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout")),
            },
        }
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        let until = self.write_until();
        let fut = async {
            match &mut self.transport.io {
                Io::Plain(s) => s.flush().await,
                Io::Tls(s) => s.flush().await,
                Io::Deflate(s) => s.flush().await,
                Io::Closed => Err(closed()),
            }
        };
        match until {
            None => fut.await,
            Some(t) => match tokio::time::timeout_at(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout")),
            },
        }
    }

    /// Ends the connection cleanly (TLS close_notify, then FIN). Dropping a
    /// `Conn` also closes it, just without close_notify.
    pub async fn close(&mut self) -> io::Result<()> {
        let fut = async {
            match &mut self.transport.io {
                Io::Plain(s) => s.shutdown().await,
                Io::Tls(s) => s.shutdown().await,
                Io::Deflate(s) => s.shutdown().await,
                Io::Closed => Ok(()),
            }
        };
        let limit = if self.idle_timeout.is_zero() {
            Duration::from_secs(5)
        } else {
            self.idle_timeout.min(Duration::from_secs(5))
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "close timeout")),
        }
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        matches!(self.transport.io, Io::Deflate(_))
    }

    /// COMPRESS=DEFLATE (RFC 4978): from now on both directions are raw DEFLATE. Octets already
    /// buffered arrived after the command and so are compressed; they are inflated first.
    /// Errors with `Unsupported` when already compressed.
    pub async fn start_deflate(&mut self) -> io::Result<()> {
        self.flush().await?;
        let transport = std::mem::replace(&mut self.transport, Transport::new(Io::Closed));
        let pending = transport.input.data().to_vec();
        let inner: BoxStream = match transport.io {
            Io::Plain(s) => s,
            Io::Tls(s) => Box::new(*s),
            other => {
                self.transport = Transport {
                    io: other,
                    ..transport_rest(transport.input, transport.eof)
                };
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "compression is already active",
                ));
            }
        };
        self.transport = Transport::new(Io::Deflate(Box::new(crate::deflate::Deflated::new(
            inner, pending,
        ))));
        Ok(())
    }

    /// STARTTLS/STLS: discards every byte already buffered (CVE-2011-0411),
    /// then runs the server handshake within the handshake timeout. Errors
    /// with `Unsupported` when not available; after a failed handshake the
    /// connection is unusable and every read/write errors.
    pub async fn start_tls(&mut self) -> io::Result<()> {
        if !self.starttls_available() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "STARTTLS not available on this connection",
            ));
        }
        let Some(provider) = self.tls.clone() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no TLS certificate configured",
            ));
        };
        let transport = std::mem::replace(&mut self.transport, Transport::new(Io::Closed));
        let (raw, discarded) = match transport.into_plain_stream() {
            Ok(x) => x,
            Err(t) => {
                self.transport = t;
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "connection is not plaintext",
                ));
            }
        };
        if discarded > 0 {
            tracing::info!(
                bytes = discarded,
                "discarded plaintext pipelined after STARTTLS"
            );
        }
        match within(self.handshake_timeout, provider.accept(raw)).await {
            Ok(Ok(stream)) => {
                let info = TlsInfo::from_connection(stream.get_ref().1);
                tracing::debug!(version = %info.version, cipher = %info.cipher, "STARTTLS done");
                self.tls_info = Some(info);
                self.transport = Transport::new(Io::Tls(Box::new(stream)));
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "STARTTLS handshake failed");
                Err(e)
            }
            Err(_) => {
                tracing::info!("STARTTLS handshake timed out");
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            }
        }
    }

    /// Fires (becomes `true`) when the server starts draining: idle sessions
    /// should say goodbye and end.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}

/// A session may end while the client still sends (an error reply, then
/// hang up). Closing a socket with unread input makes the kernel send a
/// reset and throw away the reply still queued for sending, so the client
/// never learns why. Instead the stream is handed to a short task that sends
/// TLS close_notify and FIN, and reads and drops what the client still sends
/// until it closes (bounded in time, bytes and number of such tasks).
impl Drop for Conn {
    fn drop(&mut self) {
        let io = std::mem::replace(&mut self.transport.io, Io::Closed);
        if matches!(io, Io::Closed) || self.transport.eof {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let admitted = LINGERING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LINGERING).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return;
        }
        let slot = LingerSlot;
        runtime.spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(LINGER, linger(io)).await;
        });
    }
}

/// One admitted lingering close; released however its task ends.
struct LingerSlot;
impl Drop for LingerSlot {
    fn drop(&mut self) {
        LINGERING.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn linger(mut io: Io) {
    let mut sink = [0u8; 1024];
    let mut drained = 0;
    match &mut io {
        Io::Plain(s) => {
            if s.shutdown().await.is_err() {
                return;
            }
            while drained < LINGER_DRAIN {
                match s.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => drained += n,
                }
            }
        }
        Io::Tls(s) => {
            if s.shutdown().await.is_err() {
                return;
            }
            while drained < LINGER_DRAIN {
                match s.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => drained += n,
                }
            }
        }
        Io::Deflate(s) => {
            if s.shutdown().await.is_err() {
                return;
            }
            while drained < LINGER_DRAIN {
                match s.read_raw(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => drained += n,
                }
            }
        }
        Io::Closed => {}
    }
}
