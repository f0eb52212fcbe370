//! QUIT: in AUTHORIZATION it just says goodbye (handled there); in TRANSACTION it enters the
//! UPDATE state: retrieved messages get `\Seen`, DELE-marked messages and, under a per-account
//! expire policy, retrieved messages older than the policy are expunged in one store call.

use std::collections::BTreeSet;

use crate::session::{Next, Session, State};
use crate::syntax::{Output, RespCode};

const DAY: i64 = 86_400;

impl Session {
    pub(crate) async fn update(&mut self, out: &mut Output) -> Next {
        let State::Transaction(t) = std::mem::replace(&mut self.state, State::Closed) else {
            return Next::Close;
        };
        let mailbox = t.snapshot.mailbox_id;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut remove = BTreeSet::new();
        let mut seen = Vec::new();
        for (i, e) in t.snapshot.entries.iter().enumerate() {
            if t.deleted[i] {
                remove.insert(e.uid);
                continue;
            }
            let downloaded = t.retrieved[i] || e.seen;
            if let Some(days) = t.snapshot.expire_days
                && downloaded
                && e.internal_date <= now.saturating_sub(days.max(0).saturating_mul(DAY))
            {
                remove.insert(e.uid);
                continue;
            }
            if t.retrieved[i] && !e.seen {
                seen.push(e.uid);
            }
        }
        if self.cfg.mark_retrieved_seen
            && !seen.is_empty()
            && let Err(e) = self.maildrop.mark_seen(mailbox, &seen).await
        {
            tracing::warn!(error = %e, "pop3: marking retrieved messages seen failed");
        }
        let remove: Vec<u32> = remove.into_iter().collect();
        let result = if remove.is_empty() {
            Ok(Vec::new())
        } else {
            self.maildrop.expunge(mailbox, &remove).await
        };
        if let Err(e) = self.maildrop.unlock(t.login.account_id, &self.owner).await {
            tracing::warn!(error = %e, "pop3: releasing maildrop lock failed (it will expire)");
        }
        match result {
            Ok(removed) => {
                tracing::info!(account = %t.login.address, removed = removed.len(), "pop3: update done");
                // Counts what this QUIT removed; messages expunged elsewhere meanwhile are neither.
                let left = t.snapshot.entries.len().saturating_sub(remove.len());
                out.ok(&format!(
                    "{} POP3 server signing off ({} messages removed, {left} left)",
                    self.hostname,
                    removed.len()
                ));
            }
            Err(e) => {
                tracing::warn!(account = %t.login.address, error = %e, "pop3: expunge at QUIT failed");
                out.err(Some(RespCode::SysTemp), "some deleted messages not removed");
            }
        }
        Next::Close
    }
}
