//! QUOTA (RFC 9208) for the account's storage limit: one quota root, `""`, covering every
//! mailbox; GETQUOTAROOT and GETQUOTA report it in KiB. Limits are set by the administrator
//! (`wharf user quota`), so SETQUOTA is refused and QUOTASET is not advertised.

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::response;

impl Session {
    /// `* QUOTA "" (STORAGE used limit)` when the account has a limit.
    async fn quota_line(&self) -> Result<Option<String>, Done> {
        let (used, limit) = self
            .backend
            .mailboxes
            .quota(self.account_id())
            .await
            .map_err(Done::store)?;
        if limit == 0 {
            return Ok(None);
        }
        // Units of 1024 octets: usage rounded up, the limit down, so a full account shows full.
        Ok(Some(format!(
            "* QUOTA \"\" (STORAGE {} {})\r\n",
            used.div_ceil(1024),
            limit / 1024
        )))
    }

    pub(crate) async fn get_quota_root(&mut self, mailbox: &str, out: &mut Output) -> Done {
        let mb = match self.find_mailbox(mailbox).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let quota = match self.quota_line().await {
            Ok(q) => q,
            Err(d) => return d,
        };
        let mut line = b"* QUOTAROOT ".to_vec();
        response::astring(&mut line, &self.mailbox_out(&mb.name));
        if quota.is_some() {
            line.extend_from_slice(b" \"\"");
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        if let Some(q) = quota {
            out.extend_from_slice(q.as_bytes());
        }
        Done::ok("GETQUOTAROOT completed")
    }

    pub(crate) async fn get_quota(&mut self, root: &str, out: &mut Output) -> Done {
        if !root.is_empty() {
            return Done::no(Some("NONEXISTENT"), "No such quota root");
        }
        match self.quota_line().await {
            Ok(Some(q)) => {
                out.extend_from_slice(q.as_bytes());
                Done::ok("GETQUOTA completed")
            }
            Ok(None) => Done::no(Some("NONEXISTENT"), "This account has no quota"),
            Err(d) => d,
        }
    }
}
