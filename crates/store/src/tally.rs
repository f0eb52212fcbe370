//! Report tallies: day-by-day counters of what the daily reports Wharf sends describe (DMARC
//! aggregate reports about the mail we received, TLS-RPT reports about the TLS sessions we
//! opened), and the claims that let exactly one node send each report. The store keeps opaque
//! items (JSON documents the reporting code defines) and adds their counts; it knows nothing of
//! DMARC or TLS.

use async_trait::async_trait;

use crate::Result;

/// The UTC day (days since 1970-01-01) a Unix time falls in.
pub fn utc_day(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(86_400)
}

/// One counter: how many times `item` happened for `domain` (the domain the report goes to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub domain: String,
    pub item: String,
    pub count: u64,
}

#[async_trait]
pub trait TallyStore: Send + Sync {
    /// Adds each tally's count to the stored one of the same (kind, day, domain, item).
    async fn add_tallies(&self, kind: &str, day: i64, tallies: &[Tally]) -> Result<()>;

    /// The tallies of one day (and one domain, when given), in no particular order.
    async fn tallies(&self, kind: &str, day: i64, domain: Option<&str>) -> Result<Vec<Tally>>;

    /// The (day, domain) pairs before `before_day` that have tallies and no claimed report,
    /// oldest first.
    async fn unreported(&self, kind: &str, before_day: i64) -> Result<Vec<(i64, String)>>;

    /// Claims the report of (kind, day, domain) for `owner`: true for the one caller that gets
    /// it, false for every later one, on any node.
    async fn claim_report(
        &self,
        kind: &str,
        day: i64,
        domain: &str,
        owner: &str,
        now: i64,
    ) -> Result<bool>;

    /// Forgets tallies and claims of days before `before_day`; returns the tally rows removed.
    async fn prune_tallies(&self, before_day: i64) -> Result<u64>;
}
