//! METADATA and METADATA-SERVER (RFC 5464): GETMETADATA and SETMETADATA on a mailbox or, with
//! the mailbox `""`, on the server. No mailbox is shared, so `/shared` entries are as personal
//! as `/private` ones: every account has its own of both, of every mailbox and of the server.
//! The server's `/shared/admin` is the one exception: read-only, from `[imap] metadata_admin`.
//! Entry names compare case-insensitively (stored lower-cased); their syntax is checked by the
//! parser (BAD). The store enforces the limits in the writing transaction.

use std::collections::BTreeMap;

use wharf_store::{AccountId, MailboxId, Rights, StoreError};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::MetadataDepth;
use crate::syntax::response;

const SERVER_ADMIN: &str = "/shared/admin";

/// Whether stored entry `name` is selected by requested entry `asked` (both lower-cased) at
/// `depth`: the entry itself, its children (1), or every descendant (infinity).
fn selects(asked: &str, name: &str, depth: MetadataDepth) -> bool {
    if name == asked {
        return true;
    }
    let Some(rest) = name.strip_prefix(asked).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    match depth {
        MetadataDepth::Zero => false,
        MetadataDepth::One => !rest.contains('/'),
        MetadataDepth::Infinity => true,
    }
}

/// A value as RFC 5464's `value` (nstring / literal8): quoted when short printable ASCII, a
/// literal8 when it holds NUL (a plain literal may not), else a literal.
fn write_value(out: &mut Vec<u8>, v: &[u8]) {
    if v.len() < 1024 && v.iter().all(|b| (0x20..0x7f).contains(b)) {
        response::string(out, v);
    } else {
        response::literal(out, v, v.contains(&0));
    }
}

impl Session {
    /// The mailbox an argument names (`None` for the server, `""`), its name as responses
    /// spell it, and the account whose entries are meant. Another account's mailbox (RFC 4314)
    /// shows its owner's `/shared/` entries to whom holds `need`; its `/private/` ones are the
    /// owner's own.
    ///
    /// RFC 5464 §3.3: reading needs `l` and one of `r s w i p`; writing shared entries needs `l`
    /// and `w` (`set`).
    async fn metadata_target(
        &self,
        mailbox: &str,
        set: bool,
    ) -> Result<(Option<MailboxId>, String, Option<AccountId>), Done> {
        if mailbox.is_empty() {
            return Ok((None, String::new(), None));
        }
        let found = self.open_mailbox(mailbox, Rights::LOOKUP).await?;
        if set && !found.rights.contains(Rights::WRITE) {
            return Err(crate::namespace::refusal(found.rights, Rights::WRITE));
        }
        if !set
            && !found
                .rights
                .intersects(crate::namespace::METADATA_READ_RIGHTS)
        {
            return Err(crate::namespace::refusal(found.rights, Rights::READ));
        }
        let mb = found.mailbox;
        let foreign = (mb.account_id != self.account_id()).then_some(mb.account_id);
        Ok((Some(mb.id), self.mailbox_out(&mb.name), foreign))
    }

    pub(crate) async fn get_metadata(
        &mut self,
        mailbox: &str,
        max_size: Option<u64>,
        depth: MetadataDepth,
        entries: &[String],
        out: &mut Output,
    ) -> Done {
        let (target, shown, owner) = match self.metadata_target(mailbox, false).await {
            Ok(t) => t,
            Err(d) => return d,
        };
        let mut stored = match self
            .backend
            .mailboxes
            .get_metadata(owner.unwrap_or(self.account_id()), target)
            .await
        {
            Ok(s) => s,
            Err(e) => return Done::store(e),
        };
        if owner.is_some() {
            stored.retain(|(n, _)| n.to_ascii_lowercase().starts_with("/shared/"));
        }
        if target.is_none()
            && let Some(admin) = &self.cfg.metadata_admin
        {
            stored.retain(|(n, _)| n != SERVER_ADMIN);
            stored.push((SERVER_ADMIN.to_string(), admin.as_bytes().to_vec()));
        }
        // Sorted and each entry once, however many requested entries select it.
        let mut found: BTreeMap<String, Option<&[u8]>> = BTreeMap::new();
        for asked in entries {
            let asked = asked.to_lowercase();
            let mut selected = false;
            for (name, value) in &stored {
                if selects(&asked, name, depth) {
                    found.insert(name.clone(), Some(value.as_slice()));
                    selected = true;
                }
            }
            // An entry asked for by name that selects nothing reads NIL; one that exists only
            // as the parent of what DEPTH selects is not listed (RFC 5464 §4.2.2's example).
            if !selected {
                found.entry(asked).or_insert(None);
            }
        }
        let mut longest_skipped = 0u64;
        let mut line = b"* METADATA ".to_vec();
        response::astring(&mut line, &shown);
        line.extend_from_slice(b" (");
        let mut any = false;
        for (name, value) in &found {
            if let (Some(max), Some(v)) = (max_size, value)
                && v.len() as u64 > max
            {
                longest_skipped = longest_skipped.max(v.len() as u64);
                continue;
            }
            if any {
                line.push(b' ');
            }
            any = true;
            response::astring(&mut line, name);
            line.push(b' ');
            match value {
                Some(v) => write_value(&mut line, v),
                None => line.extend_from_slice(b"NIL"),
            }
        }
        line.extend_from_slice(b")\r\n");
        if any {
            out.extend_from_slice(&line);
        }
        if longest_skipped > 0 {
            return Done::ok_code(
                format!("METADATA LONGENTRIES {longest_skipped}"),
                "GETMETADATA completed",
            );
        }
        Done::ok("GETMETADATA completed")
    }

    pub(crate) async fn set_metadata(
        &mut self,
        mailbox: &str,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Done {
        let limits = self.cfg.metadata_limits();
        if entries.iter().any(|(_, v)| {
            v.as_ref()
                .is_some_and(|v| v.len() as u64 > limits.max_value)
        }) {
            return Done::no(
                Some(&format!("METADATA MAXSIZE {}", limits.max_value)),
                "Value too large",
            );
        }
        // Another account's mailbox: its shared entries only (`w` checked with the lookup).
        let (target, _, owner) = match self.metadata_target(mailbox, true).await {
            Ok(t) => t,
            Err(d) => return d,
        };
        if owner.is_some()
            && entries
                .iter()
                .any(|(n, _)| !n.to_ascii_lowercase().starts_with("/shared/"))
        {
            return Done::no(
                Some("NOPERM"),
                "Private entries of another account's mailbox are its owner's",
            );
        }
        if target.is_none()
            && entries
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(SERVER_ADMIN))
        {
            return Done::no(Some("NOPERM"), "/shared/admin is set by the administrator");
        }
        match self
            .backend
            .mailboxes
            .set_metadata(
                owner.unwrap_or(self.account_id()),
                target,
                &entries,
                &limits,
            )
            .await
        {
            Ok(()) => Done::ok("SETMETADATA completed"),
            // TOOMANY is about the number of entries (RFC 5464 §4.3); octets are RFC 5530's LIMIT.
            Err(StoreError::Limit(why)) if why.contains("octets") => Done::no(
                Some("LIMIT"),
                "The account's metadata is over its size limit",
            ),
            Err(StoreError::Limit(_)) => Done::no(Some("METADATA TOOMANY"), "Too many entries"),
            Err(e) => Done::store(e),
        }
    }
}
