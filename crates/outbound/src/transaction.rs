//! The decisions of one SMTP client transaction, free of I/O: what the server offers (EHLO
//! keywords), what the message needs (8BITMIME, SMTPUTF8, SIZE), the MAIL/RCPT commands with
//! their parameters, how replies map to per-recipient outcomes, and DATA dot-stuffing.

use crate::reply::Reply;

/// The DSN parameters live with the queue model they are stored in.
pub use wharf_store::queue::{Notify, Ret};

/// EHLO keywords that change what the client sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub esmtp: bool,
    pub pipelining: bool,
    pub starttls: bool,
    /// `SIZE n`; `Some(0)` means advertised without a limit.
    pub size: Option<u64>,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    pub dsn: bool,
    pub requiretls: bool,
    /// Upper-cased SASL mechanism names.
    pub auth: Vec<String>,
}

impl Capabilities {
    /// From an EHLO reply (first line is the greeting text, the rest keywords).
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "CHUNKING" => caps.chunking = true,
                "DSN" => caps.dsn = true,
                "REQUIRETLS" => caps.requiretls = true,
                "AUTH" => caps.auth.extend(words.map(|w| w.to_ascii_uppercase())),
                _ => {}
            }
        }
        caps
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRecipient {
    pub address: String,
    pub notify: Notify,
    /// ORCPT as given at submission (`rfc822;addr`), passed on to DSN-capable servers.
    pub orcpt: Option<String>,
}

/// One message to send: reverse path, recipients and DSN parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Empty for the null reverse path `<>`.
    pub sender: String,
    pub recipients: Vec<EnvelopeRecipient>,
    pub envid: Option<String>,
    /// Some when the submitter asked for RET.
    pub ret: Option<Ret>,
    /// RFC 8689: only to a server offering REQUIRETLS, and the parameter is passed on.
    pub require_tls: bool,
}

/// What the message requires of the receiving server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageNeeds {
    pub size: u64,
    pub eight_bit: bool,
    pub smtputf8: bool,
}

impl MessageNeeds {
    /// SMTPUTF8 is needed for non-ASCII addresses or non-ASCII header bytes (RFC 6531/6532);
    /// 8BITMIME for any byte over 127 in the body.
    pub fn of(envelope: &Envelope, message: &[u8]) -> MessageNeeds {
        let header_end = find_header_end(message);
        let (head, body) = message.split_at(header_end);
        let addr_utf8 = !envelope.sender.is_ascii()
            || envelope.recipients.iter().any(|r| !r.address.is_ascii());
        MessageNeeds {
            size: message.len() as u64,
            eight_bit: body.iter().any(|b| *b > 127) || head.iter().any(|b| *b > 127),
            smtputf8: addr_utf8 || head.iter().any(|b| *b > 127),
        }
    }
}

fn find_header_end(message: &[u8]) -> usize {
    if let Some(p) = message.windows(4).position(|w| w == b"\r\n\r\n") {
        return p + 4;
    }
    if let Some(p) = message.windows(2).position(|w| w == b"\n\n") {
        return p + 2;
    }
    message.len()
}

/// Result for one recipient of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        reply: String,
    },
    /// Try again later (4xx, network trouble, policy deferral).
    Deferred {
        status: String,
        diagnostic: String,
    },
    /// Never going to work (5xx or a local permanent reason).
    Failed {
        status: String,
        diagnostic: String,
    },
}

impl Outcome {
    pub fn from_reply(reply: &Reply) -> Outcome {
        if reply.is_positive() {
            Outcome::Delivered {
                reply: reply.one_line(),
            }
        } else if reply.is_transient() {
            Outcome::Deferred {
                status: reply.status(),
                diagnostic: format!("smtp; {}", reply.one_line()),
            }
        } else {
            Outcome::Failed {
                status: reply.status(),
                diagnostic: format!("smtp; {}", reply.one_line()),
            }
        }
    }

    pub fn deferred(status: &str, text: impl Into<String>) -> Outcome {
        Outcome::Deferred {
            status: status.into(),
            diagnostic: format!("x-wharf; {}", text.into()),
        }
    }

    pub fn failed(status: &str, text: impl Into<String>) -> Outcome {
        Outcome::Failed {
            status: status.into(),
            diagnostic: format!("x-wharf; {}", text.into()),
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Deferred { .. })
    }
}

/// The commands of one transaction, decided before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mail: String,
    pub rcpts: Vec<String>,
    pub use_bdat: bool,
    pub pipeline: bool,
}

/// Decides the transaction or the permanent reason it cannot happen with this server.
pub fn plan(caps: &Capabilities, env: &Envelope, needs: MessageNeeds) -> Result<Plan, Outcome> {
    if needs.smtputf8 && !caps.smtputf8 {
        return Err(Outcome::failed(
            "5.6.7",
            "message needs SMTPUTF8 (non-ASCII addresses or headers) and the server does not offer it",
        ));
    }
    if env.require_tls && !caps.requiretls {
        return Err(Outcome::failed(
            "5.7.30",
            "message requires REQUIRETLS (RFC 8689) and the server does not offer it",
        ));
    }
    if let Some(limit) = caps.size
        && limit > 0
        && needs.size > limit
    {
        return Err(Outcome::failed(
            "5.3.4",
            format!(
                "message of {} bytes exceeds the server's SIZE limit of {limit}",
                needs.size
            ),
        ));
    }
    let mut mail = format!("MAIL FROM:<{}>", env.sender);
    if caps.size.is_some() {
        mail.push_str(&format!(" SIZE={}", needs.size));
    }
    if needs.eight_bit && caps.eightbitmime {
        mail.push_str(" BODY=8BITMIME");
    }
    if needs.smtputf8 {
        mail.push_str(" SMTPUTF8");
    }
    if env.require_tls {
        mail.push_str(" REQUIRETLS");
    }
    if caps.dsn {
        if let Some(ret) = env.ret {
            mail.push_str(match ret {
                Ret::Full => " RET=FULL",
                Ret::Hdrs => " RET=HDRS",
            });
        }
        if let Some(id) = &env.envid {
            mail.push_str(&format!(" ENVID={}", xtext(id)));
        }
    }
    let rcpts = env
        .recipients
        .iter()
        .map(|r| {
            let mut c = format!("RCPT TO:<{}>", r.address);
            if caps.dsn {
                if r.notify.explicit {
                    c.push_str(&format!(" NOTIFY={}", r.notify.parameter()));
                }
                if let Some(o) = &r.orcpt {
                    c.push_str(&format!(" ORCPT={}", xtext(o)));
                }
            }
            c
        })
        .collect();
    Ok(Plan {
        mail,
        rcpts,
        use_bdat: caps.chunking,
        pipeline: caps.pipelining,
    })
}

/// RFC 3461 §4 xtext: `+`, `=`, controls, space and non-ASCII are hex-escaped.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Decodes RFC 3461 xtext (`+XX` hex escapes); `None` when malformed. ENVID and ORCPT are stored
/// decoded, and encoded again when passed on.
pub fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// DATA payload: every line starting with `.` gets another one (RFC 5321 §4.5.2), the body ends
/// with CRLF, and the terminating `.` line follows.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        if message.ends_with(b"\r") {
            out.push(b'\n');
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::parse_reply;

    fn ehlo(text: &str) -> Capabilities {
        Capabilities::from_ehlo(&parse_reply(text.as_bytes()).unwrap().unwrap().0)
    }

    fn env(sender: &str, rcpts: &[&str]) -> Envelope {
        Envelope {
            sender: sender.into(),
            recipients: rcpts
                .iter()
                .map(|a| EnvelopeRecipient {
                    address: a.to_string(),
                    notify: Notify::default_policy(),
                    orcpt: None,
                })
                .collect(),
            envid: None,
            ret: None,
            require_tls: false,
        }
    }

    #[test]
    fn capabilities_parsed() {
        let c = ehlo(
            "250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-AUTH PLAIN login\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
        );
        assert!(c.pipelining && c.eightbitmime && c.chunking && c.starttls && !c.smtputf8);
        assert_eq!(c.size, Some(1000));
        assert_eq!(c.auth, vec!["PLAIN", "LOGIN"]);
    }

    #[test]
    fn smtputf8_required_but_missing_fails_permanently() {
        let c = ehlo("250-mx\r\n250 8BITMIME\r\n");
        let e = env("jö@example.org", &["a@b.example"]);
        let needs = MessageNeeds::of(&e, b"Subject: x\r\n\r\nhi\r\n");
        assert!(needs.smtputf8);
        match plan(&c, &e, needs) {
            Err(Outcome::Failed { status, .. }) => assert_eq!(status, "5.6.7"),
            other => panic!("{other:?}"),
        }
        // Non-ASCII header bytes need it too; an 8-bit body alone does not.
        let e = env("a@example.org", &["b@b.example"]);
        assert!(MessageNeeds::of(&e, "Subject: é\r\n\r\nx\r\n".as_bytes()).smtputf8);
        let n = MessageNeeds::of(&e, "Subject: e\r\n\r\né\r\n".as_bytes());
        assert!(n.eight_bit && !n.smtputf8);
        let p = plan(&c, &e, n).unwrap();
        assert_eq!(p.mail, "MAIL FROM:<a@example.org> BODY=8BITMIME");
    }

    #[test]
    fn size_checked_and_announced() {
        let c = ehlo("250-mx\r\n250 SIZE 10\r\n");
        let e = env("", &["b@b.example"]);
        let big = MessageNeeds::of(&e, b"Subject: too long\r\n\r\n");
        assert!(
            matches!(plan(&c, &e, big), Err(Outcome::Failed { ref status, .. }) if status == "5.3.4")
        );
        let small = MessageNeeds::of(&e, b"\r\nx\r\n");
        assert_eq!(plan(&c, &e, small).unwrap().mail, "MAIL FROM:<> SIZE=5");
    }

    #[test]
    fn dsn_parameters_only_to_dsn_servers() {
        let mut e = env("a@x.example", &["b@y.example"]);
        e.envid = Some("id+1".into());
        e.ret = Some(Ret::Full);
        e.recipients[0].notify = Notify {
            success: true,
            failure: true,
            explicit: true,
            ..Notify::default()
        };
        e.recipients[0].orcpt = Some("rfc822;b@y.example".into());
        let needs = MessageNeeds::of(&e, b"\r\n");
        let p = plan(&ehlo("250-mx\r\n250 DSN\r\n"), &e, needs).unwrap();
        assert_eq!(p.mail, "MAIL FROM:<a@x.example> RET=FULL ENVID=id+2B1");
        assert_eq!(
            p.rcpts,
            vec!["RCPT TO:<b@y.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y.example"]
        );
        let p = plan(&ehlo("250 mx\r\n"), &e, needs).unwrap();
        assert_eq!(p.rcpts, vec!["RCPT TO:<b@y.example>"]);
    }

    #[test]
    fn requiretls_needs_the_extension_and_is_passed_on() {
        let mut e = env("a@x.example", &["b@y.example"]);
        e.require_tls = true;
        let needs = MessageNeeds::of(&e, b"\r\n");
        assert!(
            matches!(plan(&ehlo("250 mx\r\n"), &e, needs), Err(Outcome::Failed { ref status, .. }) if status == "5.7.30")
        );
        let p = plan(&ehlo("250-mx\r\n250 REQUIRETLS\r\n"), &e, needs).unwrap();
        assert_eq!(p.mail, "MAIL FROM:<a@x.example> REQUIRETLS");
    }

    #[test]
    fn dsn_parameter_parsing() {
        let n = Notify::from_param(Some("success,Delay"));
        assert!(n.success && n.delay && !n.failure && n.explicit);
        assert_eq!(n.parameter(), "SUCCESS,DELAY");
        assert!(Notify::from_param(Some("NEVER")).never);
        assert_eq!(Notify::from_param(None), Notify::default_policy());
        assert_eq!(Ret::from_param("hdrs"), Some(Ret::Hdrs));
        assert_eq!(Ret::from_param("x"), None);
        assert_eq!(
            xtext_decode("rfc822;a+2Bb@x").as_deref(),
            Some("rfc822;a+b@x")
        );
        assert_eq!(xtext_decode(&xtext("a+b=c d")).as_deref(), Some("a+b=c d"));
        assert_eq!(xtext_decode("bad+2"), None);
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(
            dot_stuff(b".a\r\nb\r\n..c\r\n"),
            b"..a\r\nb\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b"x\r\n.\r\n"), b"x\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
    }

    #[test]
    fn outcomes_from_replies() {
        let r = |s: &str| parse_reply(s.as_bytes()).unwrap().unwrap().0;
        assert!(matches!(
            Outcome::from_reply(&r("250 ok\r\n")),
            Outcome::Delivered { .. }
        ));
        assert!(
            matches!(Outcome::from_reply(&r("451 4.3.0 later\r\n")), Outcome::Deferred { ref status, .. } if status == "4.3.0")
        );
        match Outcome::from_reply(&r("550 5.1.1 no such user\r\n")) {
            Outcome::Failed { status, diagnostic } => {
                assert_eq!(status, "5.1.1");
                assert_eq!(diagnostic, "smtp; 550 5.1.1 no such user");
            }
            o => panic!("{o:?}"),
        }
    }
}
