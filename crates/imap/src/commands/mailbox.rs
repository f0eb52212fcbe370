//! Mailbox commands: SELECT/EXAMINE, CLOSE/UNSELECT, CREATE (with USE), DELETE, RENAME (INBOX
//! included), SUBSCRIBE/UNSUBSCRIBE and STATUS.

use std::collections::{BTreeSet, HashSet};

use wharf_store::{Flags, Mailbox, SpecialUse, StoreError};

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
    pub(crate) async fn find_mailbox(&self, name: &str) -> Result<Mailbox, Done> {
        let name = self.mailbox_in(name)?;
        match self.backend.mailboxes.get(self.account_id(), &name).await {
            Ok(Some(m)) if m.account_id == self.account_id() => Ok(m),
            Ok(_) => Err(Done::no(Some("NONEXISTENT"), "No such mailbox")),
            Err(e) => Err(Done::store(e)),
        }
    }

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
        let mb = match self.find_mailbox(name).await {
            Ok(m) => m,
            Err(d) => return d,
        };
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
        keywords.write_flags(read_only, out);
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
        });
        self.state = State::Selected;
        if let Some(q) = qresync
            && q.uid_validity == status.uid_validity
            && let Err(e) = self.qresync_select(&q, status.uid_next, out).await
        {
            return Done::store(e);
        }
        if read_only {
            Done::ok_code("READ-ONLY", "EXAMINE completed")
        } else {
            Done::ok_code("READ-WRITE", "SELECT completed")
        }
    }

    pub(crate) async fn close(&mut self, expunge: bool) -> Done {
        self.saved.clear();
        if let Some(sel) = self.selected.take()
            && expunge
            && !sel.read_only
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
        if name.eq_ignore_ascii_case("INBOX") {
            return Done::no(Some("ALREADYEXISTS"), "INBOX always exists");
        }
        let mut role = None;
        for u in uses {
            match SpecialUse::from_attribute(u) {
                Some(r) if role.is_none() => role = Some(r),
                _ => return Done::no(Some("USEATTR"), "Unsupported special-use attribute"),
            }
        }
        let account = self.account_id();
        match self.backend.mailboxes.get(account, &name).await {
            Ok(Some(_)) => return Done::no(Some("ALREADYEXISTS"), "Mailbox already exists"),
            Ok(None) => {}
            Err(e) => return Done::store(e),
        }
        // Superior names are created as needed (RFC 9051 §6.3.4).
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..parts.len() {
            let parent = parts[..i].join("/");
            match self.backend.mailboxes.get(account, &parent).await {
                Ok(Some(_)) => {}
                Ok(None) => match self.backend.mailboxes.create(account, &parent, None).await {
                    Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Done::store(e),
                },
                Err(e) => return Done::store(e),
            }
        }
        match self.backend.mailboxes.create(account, &name, role).await {
            Ok(m) => Done::ok_code(
                format!("MAILBOXID ({})", mailbox_id(&m)),
                "CREATE completed",
            ),
            Err(StoreError::AlreadyExists(_)) => {
                Done::no(Some("ALREADYEXISTS"), "Mailbox already exists")
            }
            Err(e) => Done::store(e),
        }
    }

    pub(crate) async fn delete(&mut self, name: &str) -> Done {
        let mb = match self.find_mailbox(name).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        if mb.name == "INBOX" {
            return Done::no(Some("CANNOT"), "INBOX cannot be deleted");
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mb.id)
        {
            self.selected = None;
            self.state = State::Authenticated;
        }
        match self
            .backend
            .mailboxes
            .delete(self.account_id(), mb.id)
            .await
        {
            Ok(()) => Done::ok("DELETE completed"),
            Err(e) => Done::store(e),
        }
    }

    pub(crate) async fn rename(&mut self, from: &str, to: &str) -> Done {
        let src = match self.find_mailbox(from).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let to = match self.mailbox_in(to) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let account = self.account_id();
        match self.backend.mailboxes.get(account, &to).await {
            Ok(Some(_)) => return Done::no(Some("ALREADYEXISTS"), "Target mailbox exists"),
            Ok(None) => {}
            Err(e) => return Done::store(e),
        }
        if to == src.name || to.starts_with(&format!("{}/", src.name)) {
            return Done::no(Some("CANNOT"), "Cannot rename a mailbox into itself");
        }
        let parts: Vec<&str> = to.split('/').collect();
        for i in 1..parts.len() {
            let parent = parts[..i].join("/");
            if let Ok(None) = self.backend.mailboxes.get(account, &parent).await
                && let Err(e) = self.backend.mailboxes.create(account, &parent, None).await
                && !matches!(e, StoreError::AlreadyExists(_))
            {
                return Done::store(e);
            }
        }
        if src.name == "INBOX" {
            // RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name; INBOX stays.
            let dst = match self.backend.mailboxes.create(account, &to, None).await {
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
        match self.backend.mailboxes.rename(account, src.id, &to).await {
            Ok(()) => {
                if let Some(s) = self.selected.as_mut()
                    && s.mailbox.id == src.id
                {
                    s.mailbox.name = to;
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
            match self.find_mailbox(name).await {
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
        let mb = match self.find_mailbox(name).await {
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
