//! QUOTA (RFC 9208) for the account's storage limit: one quota root per account, covering every
//! mailbox. The logged-in account names its own root `""`; GETQUOTAROOT and GETQUOTA report it
//! in KiB. SETQUOTA (QUOTASET) is for administrators (`accounts.role = 'admin'`): `""` is their
//! own root and `user@domain` names another account's, which administrators may also read with
//! GETQUOTA. Everyone else gets `NO [NOPERM]` from SETQUOTA and sees only `""`. The limit set is
//! the account's `quota_bytes`, the one every writer enforces and `wharf user quota` sets.

use wharf_store::{AccountId, Rights};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::response;

impl Session {
    /// `* QUOTA root (STORAGE used limit)` for `account` when it has a limit.
    async fn quota_line(&self, account: AccountId, root: &str) -> Result<Option<Vec<u8>>, Done> {
        let (used, limit) = self
            .backend
            .mailboxes
            .quota(account)
            .await
            .map_err(Done::store)?;
        if limit == 0 {
            return Ok(None);
        }
        // Units of 1024 octets: usage rounded up, the limit down, so a full account shows full.
        let mut line = b"* QUOTA ".to_vec();
        response::astring(&mut line, root);
        line.extend_from_slice(
            format!(" (STORAGE {} {})\r\n", used.div_ceil(1024), limit / 1024).as_bytes(),
        );
        Ok(Some(line))
    }

    async fn is_admin(&self) -> Result<bool, Done> {
        self.backend
            .mailboxes
            .is_admin(self.account_id())
            .await
            .map_err(Done::store)
    }

    /// The account a quota root names: `""` the session's own; `user@domain` another's, for
    /// administrators only (others, and unknown addresses, get `None`).
    async fn quota_root_account(&self, root: &str) -> Result<Option<AccountId>, Done> {
        if root.is_empty() {
            return Ok(Some(self.account_id()));
        }
        if !root.contains('@') || !self.is_admin().await? {
            return Ok(None);
        }
        self.backend
            .mailboxes
            .account_by_address(root)
            .await
            .map_err(Done::store)
    }

    pub(crate) async fn get_quota_root(&mut self, mailbox: &str, out: &mut Output) -> Done {
        let mb = match self.find_mailbox(mailbox, Rights::READ).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        // Another account's mailbox counts against its owner's quota, which is not this
        // session's to see: no root (RFC 9208 §4.2 allows a mailbox without one).
        if mb.account_id != self.account_id() {
            let mut line = b"* QUOTAROOT ".to_vec();
            response::astring(&mut line, &self.mailbox_out(&mb.name));
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
            return Done::ok("GETQUOTAROOT completed");
        }
        let quota = match self.quota_line(self.account_id(), "").await {
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
            out.extend_from_slice(&q);
        }
        Done::ok("GETQUOTAROOT completed")
    }

    pub(crate) async fn get_quota(&mut self, root: &str, out: &mut Output) -> Done {
        let account = match self.quota_root_account(root).await {
            Ok(Some(a)) => a,
            Ok(None) => return Done::no(Some("NONEXISTENT"), "No such quota root"),
            Err(d) => return d,
        };
        match self.quota_line(account, root).await {
            Ok(Some(q)) => {
                out.extend_from_slice(&q);
                Done::ok("GETQUOTA completed")
            }
            Ok(None) => Done::no(Some("NONEXISTENT"), "This account has no quota"),
            Err(d) => d,
        }
    }

    /// SETQUOTA root (STORAGE kib): administrators only. Resources left out are unlimited
    /// (RFC 9208 §4.1.3), so `()` removes the limit; STORAGE is the only resource kept, and
    /// `STORAGE 0` is refused (a stored limit of 0 means none).
    pub(crate) async fn set_quota(
        &mut self,
        root: &str,
        limits: &[(String, u64)],
        out: &mut Output,
    ) -> Done {
        match self.is_admin().await {
            Ok(true) => {}
            Ok(false) => {
                return Done::no(
                    Some("NOPERM"),
                    "Only administrators set quota limits (or use wharf user quota)",
                );
            }
            Err(d) => return d,
        }
        let account = match self.quota_root_account(root).await {
            Ok(Some(a)) => a,
            Ok(None) => return Done::no(Some("NONEXISTENT"), "No such quota root"),
            Err(d) => return d,
        };
        let mut storage = None;
        for (resource, limit) in limits {
            if resource != "STORAGE" {
                return Done::no(
                    Some("CANNOT"),
                    format!("Resource {resource} is not limited here: only STORAGE"),
                );
            }
            if storage.replace(*limit).is_some() {
                return Done::bad("STORAGE given twice");
            }
        }
        // Wharf's limit 0 is "none": a limit of no storage at all cannot be kept.
        if storage == Some(0) {
            return Done::no(
                Some("CANNOT"),
                "A STORAGE limit of 0 is not supported; SETQUOTA root () removes the limit",
            );
        }
        // KiB to octets; no STORAGE means no limit.
        let Some(bytes) = storage
            .unwrap_or(0)
            .checked_mul(1024)
            .filter(|b| i64::try_from(*b).is_ok())
        else {
            return Done::no(Some("LIMIT"), "Quota limit out of range");
        };
        if let Err(e) = self.backend.mailboxes.set_quota(account, bytes).await {
            return Done::store(e);
        }
        match self.quota_line(account, root).await {
            Ok(Some(q)) => out.extend_from_slice(&q),
            Ok(None) => {}
            Err(d) => return d,
        }
        Done::ok("SETQUOTA completed")
    }
}
