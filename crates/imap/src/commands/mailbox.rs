//! Mailbox commands: SELECT/EXAMINE, CLOSE/UNSELECT, CREATE (with USE), DELETE, RENAME (INBOX
//! included), SUBSCRIBE/UNSUBSCRIBE and STATUS.

use std::collections::{BTreeSet, HashSet};

use tracing::warn;
use wharf_store::{AccountId, AclChange, Flags, Mailbox, Rights, SpecialUse, StoreError};

use crate::namespace::{NO_CREATE, Target, WRITE_RIGHTS, refusal};
use crate::output::Output;
use crate::selected::{KeywordSet, Selected};
use crate::session::{Done, Session, State};
use crate::syntax::{QresyncParams, StatusItem, response};

/// Keywords every client may use and that are always announced in FLAGS.
const STANDARD_KEYWORDS: &[&str] = &["$Forwarded", "$Junk", "$NotJunk", "$MDNSent", "$Phishing"];

/// RFC 8474 MAILBOXID: from the UIDVALIDITY, which a mailbox keeps through RENAME and no other
/// mailbox of the server ever gets (it comes from one counter, never reused).
pub(crate) fn mailbox_id(mb: &Mailbox) -> String {
    format!("M{}", mb.uid_validity)
}

impl Session {
    pub(crate) async fn select(
        &mut self,
        name: &str,
        read_only: bool,
        qresync: Option<QresyncParams>,
        out: &mut Output,
    ) -> Done {
        let had = self.selected.take().is_some();
        // The saved search result belongs to the mailbox it was made in (RFC 5182 §2.1).
        self.saved.clear();
        self.state = crate::session::State::Authenticated;
        if had {
            out.extend_from_slice(b"* OK [CLOSED] Previous mailbox closed\r\n");
        }
        let (mb, rights) = match self.open_mailbox(name, Rights::READ).await {
            Ok(f) => (f.mailbox, f.rights),
            Err(d) => return d,
        };
        // Without a right to change anything the mailbox is read-only (RFC 4314 §4).
        let asked_read_only = read_only;
        let read_only = read_only || !rights.intersects(WRITE_RIGHTS);
        // Another account's mailbox changes on its owner's channel: listen before the index
        // is read, as for the session's own.
        let owner_events = (mb.account_id != self.account_id())
            .then(|| self.backend.messages.events(mb.account_id));
        // Drain old events first: everything before the index read is in the index.
        self.drain_events();
        let msgs = match self.backend.messages.index(mb.id).await {
            Ok(m) => m,
            Err(e) => return Done::store(e),
        };
        // UIDVALIDITY and UIDNEXT read after the index, so UIDNEXT is above every UID in it.
        let status = match self.backend.mailboxes.get_by_id(mb.id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Done::no(Some("NONEXISTENT"), "No such mailbox"),
            Err(e) => return Done::store(e),
        };
        // Nothing flagged \Recent in the index: nothing to claim (whatever arrives later is
        // claimed by the next sync). EXAMINE reports what is \Recent without claiming it
        // (RFC 3501 §6.3.2: the \Recent flags stay for the next SELECT).
        let recent: HashSet<u32> = if read_only && !self.rev2 {
            // Unclaimed \Recent are the newest flagged ones (claims go up by UID); the store
            // counts them, since a claim's flag update may still be on its way.
            let unclaimed = match self.backend.mailboxes.status(mb.id).await {
                Ok(st) => st.recent as usize,
                Err(e) => return Done::store(e),
            };
            let flagged: Vec<u32> = msgs
                .iter()
                .filter(|m| m.flags.contains(Flags::RECENT))
                .map(|m| m.uid)
                .collect();
            flagged[flagged.len().saturating_sub(unclaimed)..]
                .iter()
                .copied()
                .collect()
        } else if read_only || self.rev2 || !msgs.iter().any(|m| m.flags.contains(Flags::RECENT)) {
            HashSet::new()
        } else {
            match self.backend.messages.claim_recent(mb.id).await {
                Ok(r) => r.into_iter().collect(),
                Err(e) => return Done::store(e),
            }
        };
        let mut keywords = KeywordSet::default();
        for k in STANDARD_KEYWORDS {
            keywords.insert(k);
        }
        for m in &msgs {
            for k in &m.keywords {
                keywords.insert(k);
            }
        }
        keywords.write_flags(if read_only { Rights::NONE } else { rights }, out);
        out.extend_from_slice(format!("* {} EXISTS\r\n", msgs.len()).as_bytes());
        if !self.rev2 {
            out.extend_from_slice(format!("* {} RECENT\r\n", recent.len()).as_bytes());
            if let Some(i) = msgs.iter().position(|m| !m.flags.contains(Flags::SEEN)) {
                out.extend_from_slice(
                    format!("* OK [UNSEEN {}] First unseen message\r\n", i + 1).as_bytes(),
                );
            }
        }
        out.extend_from_slice(
            format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", status.uid_validity).as_bytes(),
        );
        out.extend_from_slice(
            format!("* OK [UIDNEXT {}] Predicted next UID\r\n", status.uid_next).as_bytes(),
        );
        out.extend_from_slice(format!("* OK [MAILBOXID ({})] Ok\r\n", mailbox_id(&mb)).as_bytes());
        // The mailbox row was read before the index, so every change up to its HIGHESTMODSEQ
        // is in the index (expunges included, which leave no row to take a modseq from); later
        // changes carry a higher modseq and the first sync (before the next reply) sends them.
        let modseq = msgs
            .iter()
            .map(|m| m.modseq)
            .max()
            .unwrap_or(0)
            .max(mb.highest_modseq)
            .max(1);
        // Sent whether or not CONDSTORE is enabled (RFC 7162 §3.1.2.1).
        out.extend_from_slice(format!("* OK [HIGHESTMODSEQ {modseq}] Highest\r\n").as_bytes());
        if self.rev2 {
            let mut line = b"* LIST () \"/\" ".to_vec();
            response::astring(&mut line, &self.mailbox_out(&mb.name));
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
        }
        self.selected = Some(Selected {
            mailbox: mb,
            read_only,
            msgs,
            modseq,
            recent,
            pending_expunge: BTreeSet::new(),
            dirty: true,
            keywords,
            contexts: Vec::new(),
            rights,
            owner_events,
        });
        self.state = State::Selected;
        if let Some(q) = qresync
            && q.uid_validity == status.uid_validity
            && let Err(e) = self.qresync_select(&q, status.uid_next, out).await
        {
            return Done::store(e);
        }
        if read_only && !asked_read_only {
            Done::ok_code(
                "READ-ONLY",
                "SELECT completed, no right to change the mailbox",
            )
        } else if read_only {
            Done::ok_code("READ-ONLY", "EXAMINE completed")
        } else {
            Done::ok_code("READ-WRITE", "SELECT completed")
        }
    }

    pub(crate) async fn close(&mut self, expunge: bool) -> Done {
        self.saved.clear();
        // Without `e`, CLOSE closes without expunging (RFC 4314 §4).
        if let Some(sel) = self.selected.take()
            && expunge
            && sel.flag_rights().contains(Rights::EXPUNGE)
            && let Err(e) = self.backend.messages.expunge(sel.mailbox.id, None).await
        {
            self.state = State::Authenticated;
            return Done::store(e);
        }
        self.state = State::Authenticated;
        Done::ok(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        })
    }

    pub(crate) async fn create(&mut self, name: &str, uses: &[String]) -> Done {
        let name = match self.mailbox_in(name) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let mut role = None;
        for u in uses {
            match SpecialUse::from_attribute(u) {
                Some(r) if role.is_none() => role = Some(r),
                _ => return Done::no(Some("USEATTR"), "Unsupported special-use attribute"),
            }
        }
        let target = match self.target(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return Done::no(Some("NOPERM"), "No mailbox can be created there"),
            Err(d) => return d,
        };
        if target.name == "INBOX" && target.is_personal() {
            return Done::no(Some("ALREADYEXISTS"), "INBOX always exists");
        }
        let account = target.account;
        if !target.is_personal() {
            // Special-use roles are the owner's to give (RFC 6154 §3 lets a server refuse).
            if role.is_some() {
                return Done::no(
                    Some("NOPERM"),
                    "Special-use attributes are the owner's to set",
                );
            }
            // The right to create there is checked first: whether a name exists in another
            // account is told only to whom may see it (RFC 4314 §6).
            if let Err(d) = self.may_create_below(&target).await {
                return d;
            }
        }
        match self.backend.mailboxes.get(account, &target.name).await {
            Ok(Some(_)) if target.is_personal() => {
                return Done::no(Some("ALREADYEXISTS"), "Mailbox already exists");
            }
            Ok(Some(_)) => {
                return match self.resolve_target(&target).await {
                    Ok(Some(_)) => Done::no(Some("ALREADYEXISTS"), "Mailbox already exists"),
                    Ok(None) => Done::no(Some("NOPERM"), NO_CREATE),
                    Err(d) => d,
                };
            }
            Ok(None) => {}
            Err(e) => return Done::store(e),
        }
        // Superior names are created as needed (RFC 9051 §6.3.4), in another account below the
        // superior `may_create_below` checked.
        if let Err(d) = self.create_parents(account, &target.name).await {
            return d;
        }
        match self
            .backend
            .mailboxes
            .create(account, &target.name, role)
            .await
        {
            Ok(m) => {
                // The mailbox exists: a failure to copy the parent's ACL leaves it unshared,
                // which is logged, not a failed CREATE.
                if let Err(e) = self.inherit_acl(&m).await {
                    warn!(session = self.id, mailbox = m.id, error = %e, "parent ACL not inherited");
                }
                Done::ok_code(
                    format!("MAILBOXID ({})", mailbox_id(&m)),
                    "CREATE completed",
                )
            }
            Err(StoreError::AlreadyExists(_)) => {
                Done::no(Some("ALREADYEXISTS"), "Mailbox already exists")
            }
            Err(e) => Done::store(e),
        }
    }

    /// Creates the missing superiors of a name in `account`, each with its parent's ACL.
    async fn create_parents(&self, account: AccountId, name: &str) -> Result<(), Done> {
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..parts.len() {
            let parent = parts[..i].join("/");
            match self.backend.mailboxes.get(account, &parent).await {
                Ok(Some(_)) => {}
                Ok(None) => match self.backend.mailboxes.create(account, &parent, None).await {
                    Ok(m) => {
                        if let Err(e) = self.inherit_acl(&m).await {
                            warn!(session = self.id, mailbox = m.id, error = %e, "parent ACL not inherited");
                        }
                    }
                    Err(StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Err(Done::store(e)),
                },
                Err(e) => return Err(Done::store(e)),
            }
        }
        Ok(())
    }

    /// Whether the session holds `x` on every inferior of `name` in another account (RFC 4314
    /// §4: RENAME needs `x` on what it moves); one it may not see at all counts as lacking it.
    async fn may_move_inferiors(&self, account: AccountId, name: &str) -> Result<(), Done> {
        let prefix = format!("{name}/");
        let all = self
            .backend
            .mailboxes
            .list(account)
            .await
            .map_err(Done::store)?;
        for m in all.iter().filter(|m| m.name.starts_with(&prefix)) {
            let rights = self
                .backend
                .mailboxes
                .rights_on(self.account_id(), m.id)
                .await
                .map_err(Done::store)?;
            if !rights.contains(Rights::DELETE_MAILBOX) {
                return Err(Done::no(
                    Some("NOPERM"),
                    "Right \"x\" needed on every mailbox below it",
                ));
            }
        }
        Ok(())
    }

    /// A new mailbox starts with its parent's ACL (as Dovecot does), so that whom a folder is
    /// shared with sees what is created below it, whoever created it.
    async fn inherit_acl(&self, mb: &Mailbox) -> Result<(), StoreError> {
        let Some((parent, _)) = mb.name.rsplit_once('/') else {
            return Ok(());
        };
        let Some(parent) = self.backend.mailboxes.get(mb.account_id, parent).await? else {
            return Ok(());
        };
        for (grantee, rights) in self.backend.mailboxes.acl(parent.id).await? {
            self.backend
                .mailboxes
                .set_acl(mb.account_id, mb.id, grantee, AclChange::Replace(rights))
                .await?;
        }
        Ok(())
    }

    /// In another account a mailbox is created (or renamed to) only below an existing one the
    /// session holds `k` on: the nearest existing superior (RFC 4314 §4); the missing ones
    /// between are then created with the new mailbox. The top level is the owner's.
    async fn may_create_below(&self, target: &Target) -> Result<(), Done> {
        let mut name = target.name.as_str();
        let parent = loop {
            let Some((up, _)) = name.rsplit_once('/') else {
                return Err(Done::no(Some("NOPERM"), NO_CREATE));
            };
            match self.backend.mailboxes.get(target.account, up).await {
                Ok(Some(_)) => break up,
                Ok(None) => name = up,
                Err(e) => return Err(Done::store(e)),
            }
        };
        let parent = Target {
            name: parent.to_string(),
            ..target.clone()
        };
        // Rights decide what is told: a superior the session may not see answers as if none
        // existed (RFC 4314 §6).
        match self.resolve_target(&parent).await? {
            Some(f) if f.rights.contains(Rights::CREATE) => Ok(()),
            Some(f) if f.rights.contains(Rights::LOOKUP) => Err(refusal(f.rights, Rights::CREATE)),
            _ => Err(Done::no(Some("NOPERM"), NO_CREATE)),
        }
    }

    pub(crate) async fn delete(&mut self, name: &str) -> Done {
        let found = match self.open_mailbox(name, Rights::DELETE_MAILBOX).await {
            Ok(f) => f,
            Err(d) => return d,
        };
        if found.in_account == "INBOX" {
            return Done::no(Some("CANNOT"), "INBOX cannot be deleted");
        }
        let mb = found.mailbox;
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mb.id)
        {
            self.selected = None;
            self.state = State::Authenticated;
        }
        match self.backend.mailboxes.delete(mb.account_id, mb.id).await {
            Ok(()) => Done::ok("DELETE completed"),
            Err(e) => Done::store(e),
        }
    }

    pub(crate) async fn rename(&mut self, from: &str, to: &str) -> Done {
        let found = match self.open_mailbox(from, Rights::DELETE_MAILBOX).await {
            Ok(f) => f,
            Err(d) => return d,
        };
        let to = match self.mailbox_in(to) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let target = match self.target(&to).await {
            Ok(Some(t)) => t,
            Ok(None) => return Done::no(Some("NOPERM"), "No mailbox can be renamed to there"),
            Err(d) => return d,
        };
        let src = found.mailbox;
        let account = src.account_id;
        if target.account != account {
            return Done::no(Some("CANNOT"), "A mailbox stays in its owner's account");
        }
        // In another account the right to create at the new name comes first, as for CREATE.
        if !target.is_personal()
            && let Err(d) = self.may_create_below(&target).await
        {
            return d;
        }
        match self.backend.mailboxes.get(account, &target.name).await {
            Ok(Some(_)) if target.is_personal() => {
                return Done::no(Some("ALREADYEXISTS"), "Target mailbox exists");
            }
            Ok(Some(_)) => {
                return match self.resolve_target(&target).await {
                    Ok(Some(_)) => Done::no(Some("ALREADYEXISTS"), "Target mailbox exists"),
                    Ok(None) => Done::no(Some("NOPERM"), NO_CREATE),
                    Err(d) => d,
                };
            }
            Ok(None) => {}
            Err(e) => return Done::store(e),
        }
        let from_name = found.in_account;
        if target.name == from_name || target.name.starts_with(&format!("{from_name}/")) {
            return Done::no(Some("CANNOT"), "Cannot rename a mailbox into itself");
        }
        // RENAME moves the inferiors too: in another account each needs `x` as well.
        if !target.is_personal()
            && let Err(d) = self.may_move_inferiors(account, &from_name).await
        {
            return d;
        }
        if let Err(d) = self.create_parents(account, &target.name).await {
            return d;
        }
        if from_name == "INBOX" {
            if !target.is_personal() {
                return Done::no(Some("CANNOT"), "Only its owner renames an INBOX");
            }
            // RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name; INBOX stays.
            let dst = match self
                .backend
                .mailboxes
                .create(account, &target.name, None)
                .await
            {
                Ok(m) => m,
                Err(e) => return Done::store(e),
            };
            let uids: Vec<u32> = match self.backend.messages.index(src.id).await {
                Ok(idx) => idx.iter().map(|m| m.uid).collect(),
                Err(e) => return Done::store(e),
            };
            if !uids.is_empty()
                && let Err(e) = self.backend.messages.move_to(src.id, &uids, dst.id).await
            {
                return Done::store(e);
            }
            if let Some(s) = self.selected.as_mut()
                && s.mailbox.id == src.id
            {
                s.dirty = true;
            }
            return Done::ok("RENAME completed");
        }
        match self
            .backend
            .mailboxes
            .rename(account, src.id, &target.name)
            .await
        {
            Ok(()) => {
                if let Some(s) = self.selected.as_mut()
                    && s.mailbox.id == src.id
                {
                    s.mailbox.name = target.visible(&target.name);
                }
                Done::ok("RENAME completed")
            }
            Err(e) => Done::store(e),
        }
    }

    pub(crate) async fn subscribe(&mut self, name: &str, on: bool) -> Done {
        // Subscribing needs the mailbox (as Dovecot does); unsubscribing is by name, so that a
        // name whose mailbox was deleted can still be dropped (RFC 9051 §6.3.7).
        let name = if on {
            match self.find_mailbox(name, Rights::LOOKUP).await {
                Ok(m) => m.name,
                Err(d) => return d,
            }
        } else {
            match self.mailbox_in(name) {
                Ok(n) => n,
                Err(_) => return Done::ok("UNSUBSCRIBE completed"),
            }
        };
        match self
            .backend
            .mailboxes
            .set_subscribed(self.account_id(), &name, on)
            .await
        {
            Ok(()) => Done::ok(if on {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            }),
            Err(e) => Done::store(e),
        }
    }

    pub(crate) async fn status(
        &mut self,
        name: &str,
        items: &[StatusItem],
        out: &mut Output,
    ) -> Done {
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore(out);
        }
        let mb = match self.find_mailbox(name, Rights::READ).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        match self.status_line(&mb, items).await {
            Ok(line) => {
                out.extend_from_slice(&line);
                Done::ok("STATUS completed")
            }
            Err(e) => Done::store(e),
        }
    }

    pub(crate) async fn status_line(
        &self,
        mb: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Vec<u8>, StoreError> {
        let st = self.backend.mailboxes.status(mb.id).await?;
        let mut line = b"* STATUS ".to_vec();
        response::astring(&mut line, &self.mailbox_out(&mb.name));
        line.extend_from_slice(b" (");
        let vals: Vec<String> = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => format!("MESSAGES {}", st.messages),
                StatusItem::Recent => format!("RECENT {}", st.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", st.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", st.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
                StatusItem::Deleted => format!("DELETED {}", st.deleted),
                StatusItem::Size => format!("SIZE {}", st.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", st.highest_modseq),
                StatusItem::DeletedStorage => format!("DELETED-STORAGE {}", st.deleted_size),
                StatusItem::MailboxId => format!("MAILBOXID ({})", mailbox_id(mb)),
            })
            .collect();
        line.extend_from_slice(vals.join(" ").as_bytes());
        line.extend_from_slice(b")\r\n");
        Ok(line)
    }
}
