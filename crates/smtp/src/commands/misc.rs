//! The commands outside a mail transaction's core: RSET, NOOP, QUIT, HELP, VRFY (RFC 5321 §3.5,
//! off by default), EXPN (never) and STARTTLS (RFC 3207).

use crate::backend::Resolution;
use crate::session::{Next, Session, Step};
use crate::syntax::command::{self, ParseError};
use crate::syntax::reply::Reply;

impl Session {
    pub(crate) fn rset(&mut self) -> Step {
        // Drops the transaction with its body and spool file.
        self.tx = None;
        Step::one(Reply::new(250, "2.0.0", "Ok"))
    }

    pub(crate) fn noop(&self) -> Step {
        Step::one(Reply::new(250, "2.0.0", "Ok"))
    }

    pub(crate) fn quit(&mut self) -> Step {
        self.tx = None;
        Step::close(Reply::new(221, "2.0.0", format!("{} Bye", self.hostname)))
    }

    pub(crate) fn help(&self) -> Step {
        Step::one(Reply::new(
            214,
            "2.0.0",
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
        ))
    }

    pub(crate) fn expn(&self) -> Step {
        Step::one(Reply::new(502, "5.5.1", "EXPN not available"))
    }

    pub(crate) fn starttls(&mut self) -> Step {
        if self.conn.tls.is_some() {
            return Step::one(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if !self.conn.starttls_available {
            return Step::one(Reply::new(502, "5.5.1", "STARTTLS not available"));
        }
        Step::new(
            vec![Reply::new(220, "2.0.0", "Ready to start TLS")],
            Next::StartTls,
        )
    }

    pub(crate) async fn vrfy(&mut self, addr: &str) -> Step {
        if !self.cfg.enable_vrfy {
            return Step::one(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ));
        }
        if command::validate_mailbox(addr).is_err() {
            return Step::one(ParseError::BadAddress("bad address").reply());
        }
        match self.backend.recipients.resolve(addr).await {
            Ok(Resolution::Local { .. }) => {
                Step::one(Reply::new(250, "2.1.5", format!("<{addr}>")))
            }
            Ok(_) => Step::one(Reply::new(550, "5.1.1", "User unknown")),
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "VRFY lookup failed");
                Step::one(Reply::new(451, "4.3.0", "Temporary lookup failure"))
            }
        }
    }
}
