//! wharf-testkit: the test set-up the crates' tests share, so each piece exists once. Used only
//! as a dev-dependency; everything here binds 127.0.0.1 and panics on set-up failure (a test
//! that cannot set up must fail loudly, not skip).
//!
//! - `dns`: an authoritative DNS server on loopback (UDP and TCP) over a `Zone` built in code or
//!   from zone-file lines.
//! - `garage`: a private Garage (S3-compatible object store) with one bucket, to stop and start.
//! - `postgres`: a uniquely named database on the local PostgreSQL, dropped with its handle.
//! - `store`: a temp store (embedded SQLite or PostgreSQL) and a directory with seeded accounts.
//! - `tls`: self-signed and CA-signed test certificates, as PEM, DER, `TlsProvider` or rustls
//!   server config.
//! - `listen`: a `wharf_net::Server` with named listeners on 127.0.0.1:0.
//! - `client`: a line client with timeouts for raw protocol transcripts.
//! - `MemoryQueue`: the in-memory `QueueStore` for outbound tests.
//! - `wait_for`: polls a condition until it holds or a deadline passes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test set-up: a panic is the test failing loudly"
)]

pub mod client;
pub mod dns;
pub mod garage;
pub mod listen;
pub mod postgres;
pub mod store;
pub mod tls;

pub use client::LineClient;
pub use dns::{Zone, dkim_results, start_dns};
pub use garage::Garage;
pub use listen::{Loopback, test_limits};
pub use postgres::TempDatabase;
pub use store::{Backend, TestDirectory, TestStore};
pub use tls::TestCert;
pub use wharf_store::queue::MemoryQueue;

use std::time::{Duration, Instant};

/// Polls `probe` every 100 ms until it returns `Some`, for at most `within`; panics naming
/// `what` when time runs out.
pub async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
