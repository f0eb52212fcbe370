//! EHLO/HELO (RFC 5321 §4.1.1.1): the greeting exchange and the ESMTP capabilities offered, which
//! depend on the role (AUTH on submission only), TLS (STARTTLS before, REQUIRETLS after) and login.

use crate::SmtpRole;
use crate::session::{Session, Step};
use crate::syntax::reply::Reply;

impl Session {
    pub(crate) fn hello(&mut self, domain: String, esmtp: bool) -> Step {
        self.tx = None;
        self.helo = Some(domain.clone());
        self.esmtp = esmtp;
        let first = format!(
            "{} Hello {} [{}]",
            self.hostname,
            domain,
            self.conn.peer.ip()
        );
        if !esmtp {
            return Step::one(Reply::plain(250, vec![first]));
        }
        let mut lines = vec![
            first,
            "PIPELINING".into(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if self.conn.starttls_available && self.conn.tls.is_none() {
            lines.push("STARTTLS".into());
        }
        if self.role == SmtpRole::Submission && self.login.is_none() && self.tls_or_loopback_ok() {
            let mechs = self.backend.auth.mechanisms();
            lines.push(format!("AUTH {}", mechs.join(" ")));
        }
        if self.conn.tls.is_some() {
            lines.push("REQUIRETLS".into());
        }
        Step::one(Reply::plain(250, lines))
    }
}
