//! APPEND with flags and internal date; answers APPENDUID (RFC 4315).

use bytes::Bytes;

use crate::commands::store::split_flags;
use crate::session::{Done, Session};
use crate::syntax::Flag;

impl Session {
    pub(crate) async fn append(
        &mut self,
        mailbox: &str,
        flags: &[Flag],
        date: Option<i64>,
        message: Vec<u8>,
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
        if message.len() as u64 > self.cfg.max_append {
            return Done::no(Some("TOOBIG"), "Message too large");
        }
        let (bits, kws) = match split_flags(flags) {
            Ok(x) => x,
            Err(m) => return Done::bad(m),
        };
        let when = date.unwrap_or_else(|| chrono::Utc::now().timestamp());
        match self
            .store
            .append(mb.id, Bytes::from(message), bits, &kws, when)
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
