//! Delivery status notifications (RFC 3464 inside an RFC 6522 multipart/report): failure and
//! delay reports to the envelope sender, carrying the original headers or the whole message as
//! RET asks. They go out with the null reverse path, which is what keeps them from looping.

use crate::transaction::Ret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    pub address: String,
    pub orcpt: Option<String>,
    pub action: Action,
    pub status: String,
    /// `smtp; 550 …` or `x-wharf; …`.
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    /// Unix seconds.
    pub last_attempt: i64,
    /// For delays: when the queue gives up.
    pub will_retry_until: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DsnReport<'a> {
    /// This server's host name (Reporting-MTA, MAILER-DAEMON address).
    pub reporting_mta: &'a str,
    /// The envelope sender of the original message: the DSN's recipient.
    pub to: &'a str,
    pub envid: Option<&'a str>,
    pub arrival: i64,
    pub recipients: &'a [DsnRecipient],
    pub original: &'a [u8],
    pub ret: Ret,
}

fn rfc2822(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// One header value on one line: CR/LF can never split a field (the diagnostics come from
/// remote servers).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn header_block(message: &[u8]) -> &[u8] {
    if let Some(p) = message.windows(4).position(|w| w == b"\r\n\r\n") {
        return &message[..p + 2];
    }
    if let Some(p) = message.windows(2).position(|w| w == b"\n\n") {
        return &message[..p + 1];
    }
    message
}

/// The complete DSN message, CRLF line endings.
pub fn build(report: &DsnReport<'_>) -> Vec<u8> {
    let boundary = format!("wharf-dsn-{:016x}", rand::random::<u64>());
    let failed = report.recipients.iter().any(|r| r.action == Action::Failed);
    let delayed = report
        .recipients
        .iter()
        .any(|r| r.action == Action::Delayed);
    let subject = if failed {
        "Undelivered Mail Returned to Sender"
    } else if delayed {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    };
    let mta = clean(report.reporting_mta);
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n"
    ));
    out.push_str(&format!("To: <{}>\r\n", clean(report.to)));
    out.push_str(&format!("Subject: {subject}\r\n"));
    out.push_str(&format!(
        "Date: {}\r\n",
        rfc2822(chrono::Utc::now().timestamp())
    ));
    out.push_str(&format!(
        "Message-ID: <dsn.{:016x}@{mta}>\r\n",
        rand::random::<u64>()
    ));
    out.push_str("Auto-Submitted: auto-replied\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str("This is a MIME-encapsulated delivery status notification.\r\n\r\n");

    // Human-readable part.
    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    if failed {
        out.push_str(&format!(
            "This is the mail system at {mta}.\r\n\r\nYour message could not be delivered to one or more recipients.\r\nIt is attached below.\r\n\r\n"
        ));
    } else if !delayed {
        out.push_str(&format!(
            "This is the mail system at {mta}.\r\n\r\nYour message was delivered to the recipients below, or relayed to\r\nservers that do not report delivery further.\r\n\r\n"
        ));
    } else {
        out.push_str(&format!(
            "This is the mail system at {mta}.\r\n\r\nYour message has not been delivered yet to the recipients below.\r\nDelivery will be retried; no action is needed from you now.\r\n\r\n"
        ));
    }
    for r in report.recipients {
        out.push_str(&format!(
            "<{}>: {} ({})\r\n",
            clean(&r.address),
            r.action.as_str(),
            clean(r.diagnostic.as_deref().unwrap_or(&r.status))
        ));
    }
    out.push_str("\r\n");

    // Machine-readable part (RFC 3464 §2).
    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str("Content-Type: message/delivery-status\r\n\r\n");
    out.push_str(&format!("Reporting-MTA: dns; {mta}\r\n"));
    if let Some(id) = report.envid {
        out.push_str(&format!("Original-Envelope-Id: {}\r\n", clean(id)));
    }
    out.push_str(&format!("Arrival-Date: {}\r\n", rfc2822(report.arrival)));
    for r in report.recipients {
        out.push_str("\r\n");
        if let Some(o) = &r.orcpt {
            out.push_str(&format!("Original-Recipient: {}\r\n", clean(o)));
        }
        out.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            clean(&r.address)
        ));
        out.push_str(&format!("Action: {}\r\n", r.action.as_str()));
        out.push_str(&format!("Status: {}\r\n", clean(&r.status)));
        if let Some(m) = &r.remote_mta {
            out.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(m)));
        }
        if let Some(d) = &r.diagnostic {
            out.push_str(&format!("Diagnostic-Code: {}\r\n", clean(d)));
        }
        out.push_str(&format!(
            "Last-Attempt-Date: {}\r\n",
            rfc2822(r.last_attempt)
        ));
        if let Some(t) = r.will_retry_until {
            out.push_str(&format!("Will-Retry-Until: {}\r\n", rfc2822(t)));
        }
    }
    out.push_str("\r\n");

    // The original: whole message for RET=FULL, else its header (RFC 3462 text/rfc822-headers).
    out.push_str(&format!("--{boundary}\r\n"));
    let mut bytes = out.into_bytes();
    match report.ret {
        Ret::Full => {
            bytes.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
            bytes.extend_from_slice(report.original);
        }
        Ret::Hdrs => {
            bytes.extend_from_slice(b"Content-Type: text/rfc822-headers\r\n\r\n");
            bytes.extend_from_slice(header_block(report.original));
        }
    }
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    #[test]
    fn failure_report_parses_back() {
        let rcpts = [DsnRecipient {
            address: "bob@remote.example".into(),
            orcpt: Some("rfc822;bob@remote.example".into()),
            action: Action::Failed,
            status: "5.1.1".into(),
            diagnostic: Some("smtp; 550 5.1.1 no such user\r\nInjected: yes".into()),
            remote_mta: Some("mx.remote.example".into()),
            last_attempt: 1_700_000_000,
            will_retry_until: None,
        }];
        let original = b"From: a@local.example\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let raw = build(&DsnReport {
            reporting_mta: "mail.local.example",
            to: "a@local.example",
            envid: Some("ENV1"),
            arrival: 1_699_999_000,
            recipients: &rcpts,
            original,
            ret: Ret::Hdrs,
        });
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        let status = msg
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|c| c.subtype() == Some("delivery-status"))
            })
            .unwrap();
        let text = String::from_utf8_lossy(status.contents()).to_string();
        assert!(
            text.contains("Final-Recipient: rfc822; bob@remote.example\r\n"),
            "{text}"
        );
        assert!(text.contains("Action: failed\r\nStatus: 5.1.1\r\n"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user  Injected: yes\r\n"));
        assert!(text.contains("Original-Envelope-Id: ENV1\r\n"));
        let s = String::from_utf8_lossy(&raw);
        assert!(
            s.contains("Subject: hello") && !s.contains("secret body"),
            "RET=HDRS returns headers only"
        );
        let full = build(&DsnReport {
            reporting_mta: "mail.local.example",
            to: "a@local.example",
            envid: None,
            arrival: 1,
            recipients: &rcpts,
            original,
            ret: Ret::Full,
        });
        assert!(String::from_utf8_lossy(&full).contains("secret body"));
    }
}
