//! APPEND with flags and internal date; answers APPENDUID (RFC 4315). MULTIAPPEND (RFC 3502):
//! several messages in one command are stored in one transaction, all or none, quota checked on
//! their sum, and APPENDUID carries their UID set. CATENATE (RFC 4469, `commands/catenate.rs`)
//! builds a message from text parts and IMAP URLs. Messages arrive in memory or, when large,
//! spooled to temp files by the receiver (`receive`, `spool`).

use bytes::Bytes;
use tracing::warn;
use wharf_store::{NewMessage, Rights};

use crate::commands::catenate::UrlCache;
use crate::commands::store::{permitted_flags, split_flags};
use crate::session::{Done, Session};
use crate::spool::Spooled;
use crate::syntax::{AppendData, AppendLiteral, AppendMessage, CatPart};

/// The spooled literals of one APPEND, by the offset of their `{` in the command.
pub(crate) type Spools = Vec<(usize, Spooled)>;

/// `a:b` runs of a UID list (RFC 4315 uid-set), in the order given.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && end.checked_add(1) == Some(uids[i + 1]) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Session {
    pub(crate) async fn append(
        &mut self,
        mailbox: &str,
        messages: Vec<AppendMessage>,
        mut spools: Spools,
    ) -> Done {
        let (mb, rights) = match self.open_mailbox(mailbox, Rights::INSERT).await {
            Ok(f) => (f.mailbox, f.rights),
            Err(mut d) => {
                if d.code.as_deref() == Some("NONEXISTENT") {
                    d.code = Some("TRYCREATE".into());
                }
                return d;
            }
        };
        // The octets this command will hold in memory beyond the literal budget: its spooled
        // literals once read back, and, for CATENATE URLs, up to `max_append` gathered from the
        // store. Charged to a budget all sessions share before any of it is read, so that many
        // large APPENDs at once wait for each other instead of each holding its messages.
        let spooled: u64 = spools.iter().map(|(_, s)| s.len()).sum();
        let gathers_urls = messages.iter().any(|m| match &m.data {
            AppendData::Catenate(parts) => parts.iter().any(|p| matches!(p, CatPart::Url(_))),
            AppendData::Literal(_) => false,
        });
        let held = spooled.saturating_add(if gathers_urls { self.cfg.max_append } else { 0 });
        let wait = std::time::Duration::from_millis(self.cfg.store_memory_wait_ms);
        let Some(_store_memory) = self.shared.reserve_store_memory(held, wait).await else {
            warn!(
                session = self.id,
                octets = held,
                "APPEND refused: store memory budget in use"
            );
            return Done::no(
                Some("LIMIT"),
                "Server busy storing other messages, try again",
            );
        };
        let now = chrono::Utc::now().timestamp();
        let mut batch = Vec::with_capacity(messages.len());
        let mut total: u64 = 0;
        let mut urls = UrlCache::default();
        for m in messages {
            let (flags, keywords) = match split_flags(&m.flags) {
                // Flags the session may not set are left off (RFC 4314 §4).
                Ok((flags, keywords)) => permitted_flags(flags, keywords, rights),
                Err(e) => return Done::bad(e),
            };
            let raw = match m.data {
                AppendData::Literal(l) => match self.literal_bytes(l, &mut spools).await {
                    Ok(b) => b,
                    Err(d) => return d,
                },
                AppendData::Catenate(parts) => {
                    let room = self.cfg.max_append.saturating_sub(total);
                    match self.catenate(parts, &mut spools, room, &mut urls).await {
                        Ok(b) => b,
                        Err(d) => return d,
                    }
                }
            };
            total = total.saturating_add(raw.len() as u64);
            if raw.len() as u64 > self.cfg.max_append || total > self.cfg.max_append {
                return Done::no(Some("TOOBIG"), "Message too large");
            }
            batch.push(NewMessage {
                raw,
                flags,
                keywords,
                internal_date: m.date.unwrap_or(now),
            });
        }
        if !spools.is_empty() {
            return Done::bad("Unexpected literal");
        }
        let stored = if batch.len() == 1 {
            let Some(m) = batch.pop() else {
                return Done::bad("APPEND without a message");
            };
            self.backend
                .messages
                .append(mb.id, m.raw, m.flags, &m.keywords, m.internal_date)
                .await
                .map(|o| vec![o])
        } else {
            self.backend.messages.append_many(mb.id, batch).await
        };
        match stored {
            Ok(o) => {
                if let Some(s) = self.selected.as_mut()
                    && s.mailbox.id == mb.id
                {
                    s.dirty = true;
                }
                let validity = o.first().map(|x| x.uid_validity).unwrap_or(mb.uid_validity);
                let uids: Vec<u32> = o.iter().map(|x| x.uid).collect();
                Done::ok_code(
                    format!("APPENDUID {validity} {}", uid_set(&uids)),
                    "APPEND completed",
                )
            }
            Err(e) => Done::store(e),
        }
    }

    /// A literal's octets: from the command, or read back from its spool file (which is removed
    /// when dropped, on every path).
    pub(crate) async fn literal_bytes(
        &mut self,
        l: AppendLiteral,
        spools: &mut Spools,
    ) -> Result<Bytes, Done> {
        let spooled = match spools.iter().position(|(at, _)| *at == l.at) {
            Some(i) if l.data.is_empty() => spools.swap_remove(i).1,
            _ => return Ok(Bytes::from(l.data)),
        };
        match spooled.read().await {
            Ok(b) => Ok(b),
            Err(e) => {
                warn!(session = self.id, error = %e, "reading the APPEND spool failed");
                Err(Done::no(Some("SERVERBUG"), "Cannot read the message back"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_are_runs() {
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[3, 4, 5]), "3:5");
        assert_eq!(uid_set(&[3, 4, 9, 11, 12]), "3:4,9,11:12");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
        assert_eq!(uid_set(&[]), "");
    }
}
