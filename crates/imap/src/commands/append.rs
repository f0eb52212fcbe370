//! APPEND with flags and internal date; answers APPENDUID (RFC 4315). The message arrives in
//! memory or, when large, spooled to a temp file by the receiver (`receive`, `spool`).

use bytes::Bytes;
use tracing::warn;

use crate::commands::store::split_flags;
use crate::session::{Done, Session};
use crate::spool::Spooled;
use crate::syntax::Flag;

/// Where the received message is.
pub(crate) enum AppendBody {
    Memory(Vec<u8>),
    Spooled(Spooled),
}

impl AppendBody {
    fn len(&self) -> u64 {
        match self {
            AppendBody::Memory(m) => m.len() as u64,
            AppendBody::Spooled(s) => s.len(),
        }
    }
}

impl Session {
    pub(crate) async fn append(
        &mut self,
        mailbox: &str,
        flags: &[Flag],
        date: Option<i64>,
        message: AppendBody,
    ) -> Done {
        let mb = match self.find_mailbox(mailbox).await {
            Ok(m) => m,
            Err(mut d) => {
                if d.code.as_deref() == Some("NONEXISTENT") {
                    d.code = Some("TRYCREATE".into());
                }
                return d;
            }
        };
        if message.len() > self.cfg.max_append {
            return Done::no(Some("TOOBIG"), "Message too large");
        }
        let (bits, kws) = match split_flags(flags) {
            Ok(x) => x,
            Err(m) => return Done::bad(m),
        };
        let when = date.unwrap_or_else(|| chrono::Utc::now().timestamp());
        // The store takes the message whole: a spooled one is read back only now (its file is
        // removed when `s` drops, on every path).
        let raw = match message {
            AppendBody::Memory(m) => Bytes::from(m),
            AppendBody::Spooled(s) => match s.read().await {
                Ok(b) => b,
                Err(e) => {
                    warn!(session = self.id, error = %e, "reading the APPEND spool failed");
                    return Done::no(Some("SERVERBUG"), "Cannot read the message back");
                }
            },
        };
        match self
            .backend
            .messages
            .append(mb.id, raw, bits, &kws, when)
            .await
        {
            Ok(o) => {
                if let Some(s) = self.selected.as_mut()
                    && s.mailbox.id == mb.id
                {
                    s.dirty = true;
                }
                Done::ok_code(
                    format!("APPENDUID {} {}", o.uid_validity, o.uid),
                    "APPEND completed",
                )
            }
            Err(e) => Done::store(e),
        }
    }
}
