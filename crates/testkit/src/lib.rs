//! wharf-testkit: the test set-up the crates' tests share, so each piece exists once. Used only
//! as a dev-dependency; everything here binds 127.0.0.1 and panics on set-up failure (a test
//! that cannot set up must fail loudly, not skip).
//!
//! - `dns`: an authoritative DNS server on loopback (UDP and TCP) over a `Zone` built in code or
//!   from zone-file lines.
//! - `postgres`: a uniquely named database on the local PostgreSQL, dropped with its handle.
//! - `store`: a temp store (embedded SQLite or PostgreSQL) and a directory with seeded accounts.
//! - `tls`: self-signed and CA-signed test certificates, as PEM, DER, `TlsProvider` or rustls
//!   server config.
//! - `listen`: a `wharf_net::Server` with named listeners on 127.0.0.1:0.
//! - `client`: a line client with timeouts for raw protocol transcripts.
//! - `MemoryQueue`: the in-memory `QueueStore` for outbound tests.

pub mod client;
pub mod dns;
pub mod listen;
pub mod postgres;
pub mod store;
pub mod tls;

pub use client::LineClient;
pub use dns::{Zone, dkim_results, start_dns};
pub use listen::{Loopback, test_limits};
pub use postgres::TempDatabase;
pub use store::{Backend, TestDirectory, TestStore};
pub use tls::TestCert;
pub use wharf_store::queue::MemoryQueue;
