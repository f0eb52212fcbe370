//! The nodes of one PostgreSQL store throttle password guessing as one (issue 19 item 3): every
//! `PERIOD` this node writes its authentication failure counts to the store's `auth_failures`
//! table when they changed, and hands the other nodes' counts to its directory's throttle, which
//! adds them to its own (wharf-directory's `throttle`). Logins never wait for this: an attacker
//! spreading guesses over N nodes gets at most about one period's worth of extra tries per node.
//!
//! Not run on the embedded SQLite store: one process is the only node there, and its writer is
//! better spent on mail.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use wharf_directory::Directory;
use wharf_store::AuthFailureCount;

/// How often counts go out and come in.
pub const PERIOD: Duration = Duration::from_secs(2);
/// An unchanged, non-empty report is still rewritten this often, so that the store (which
/// forgets rows not updated for a day) keeps the windows of a long `auth_lockout`.
const REFRESH: Duration = Duration::from_secs(3600);

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether the store at `url` has room for more than one node.
pub fn shared_store(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// Starts the exchange for this node (`node` is its registered id).
pub fn spawn(directory: Directory, node: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut exchange = Exchange {
            directory,
            node,
            reported: None,
            failing: false,
        };
        let mut every = tokio::time::interval(PERIOD);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            exchange.once().await;
        }
    })
}

struct Exchange {
    directory: Directory,
    node: String,
    /// The last report the store took, and when.
    reported: Option<(Vec<AuthFailureCount>, Instant)>,
    /// The last exchange failed (warned once; the next success says so).
    failing: bool,
}

impl Exchange {
    async fn once(&mut self) {
        let store = self.directory.store().clone();
        let counts = self.directory.auth_failures_to_share();
        let due = match &self.reported {
            None => true,
            Some((last, at)) => *last != counts || (!counts.is_empty() && at.elapsed() >= REFRESH),
        };
        let mut result = Ok(());
        if due {
            result = store
                .report_auth_failures(&self.node, &counts, unix_now())
                .await;
            if result.is_ok() {
                self.reported = Some((counts, Instant::now()));
            }
        }
        if result.is_ok() {
            let window =
                i64::try_from(self.directory.config().auth_lockout.as_secs()).unwrap_or(i64::MAX);
            result = match store
                .auth_failures_elsewhere(&self.node, unix_now().saturating_sub(window))
                .await
            {
                Ok(elsewhere) => {
                    self.directory.import_auth_failures(&elsewhere);
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        match result {
            // The imported counts stay until their windows end: a short database outage
            // neither forgets nor prolongs them.
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "cannot share authentication failure counts with the other nodes; each node throttles on its own until the store answers");
            }
            Err(e) => tracing::debug!(error = %e, "authentication failure counts: still failing"),
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(
                    "authentication failure counts are shared with the other nodes again"
                );
            }
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_is_shared() {
        assert!(shared_store("postgres://wharf@db/wharf"));
        assert!(shared_store("postgresql://db/wharf"));
        assert!(!shared_store("sqlite:///var/lib/wharf/wharf.db"));
    }
}
