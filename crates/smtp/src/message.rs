//! Header-level work on a received message: the trace headers Wharf prepends (Return-Path,
//! Received), the header scan submission needs (From:, Message-ID:, Date:), and inserting missing
//! headers in place. The full MIME parse happens once, in the store, at delivery.

use std::net::IpAddr;

/// Length of a leading `Return-Path:` line (the one `Trace::render` puts first), 0 when absent.
pub fn return_path_len(raw: &[u8]) -> usize {
    const NAME: &[u8] = b"Return-Path:";
    if raw.len() < NAME.len() || !raw[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return 0;
    }
    raw.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1)
}

/// Where the header section of `content` ends: the offset just after the last header line's CRLF
/// (where the empty separator line starts, or the end of `content` when there is no body).
pub fn header_end(content: &[u8]) -> usize {
    if content.starts_with(b"\r\n") {
        return 0;
    }
    match content.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => i + 2,
        None => content.len(),
    }
}

/// Header field names of a header section, in order (continuation lines skipped).
fn field_names(headers: &[u8]) -> impl Iterator<Item = &[u8]> {
    headers.split(|b| *b == b'\n').filter_map(|line| {
        let first = *line.first()?;
        if first == b' ' || first == b'\t' || first == b'\r' {
            return None;
        }
        let colon = line.iter().position(|b| *b == b':')?;
        Some(trim_ascii_end(&line[..colon]))
    })
}

fn trim_ascii_end(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && (s[end - 1] == b' ' || s[end - 1] == b'\t') {
        end -= 1;
    }
    &s[..end]
}

pub fn count_header(headers: &[u8], name: &str) -> usize {
    field_names(headers)
        .filter(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        .count()
}

/// Addresses of the From: header (RFC 5322 mailbox-list; groups flattened).
pub fn from_addresses(content: &[u8]) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(content);
    let Some(msg) = parsed else { return Vec::new() };
    let Some(from) = msg.from() else {
        return Vec::new();
    };
    from.iter()
        .filter_map(|a| a.address.as_ref().map(|s| s.to_string()))
        .collect()
}

/// Inserts `fields` (complete header lines ending in CRLF) at the end of the header section of the
/// content starting at `body_start`. The buffer was allocated with slack, so this moves bytes in
/// place rather than copying the message.
pub fn insert_headers(raw: &mut Vec<u8>, body_start: usize, fields: &[u8]) {
    if fields.is_empty() {
        return;
    }
    let end = body_start + header_end(&raw[body_start..]);
    let mut insert = Vec::with_capacity(fields.len() + 2);
    if end == raw.len() && end > body_start && !raw.ends_with(b"\r\n") {
        insert.extend_from_slice(b"\r\n");
    }
    insert.extend_from_slice(fields);
    raw.splice(end..end, insert);
}

/// RFC 5321 §4.4 trace information plus RFC 3848 / RFC 6531 protocol names.
pub struct Trace<'a> {
    pub hostname: &'a str,
    pub helo: &'a str,
    pub peer: IpAddr,
    pub esmtp: bool,
    pub tls: Option<(&'a str, &'a str)>,
    pub authenticated: Option<&'a str>,
    pub smtputf8: bool,
    pub id: &'a str,
    pub sender: Option<&'a str>,
    /// Named in the header only when the message has exactly one recipient.
    pub single_recipient: Option<&'a str>,
    pub date: &'a str,
}

impl Trace<'_> {
    pub fn protocol(&self) -> String {
        let mut p = String::from(if self.smtputf8 {
            "UTF8SMTP"
        } else if self.esmtp {
            "ESMTP"
        } else {
            "SMTP"
        });
        if self.tls.is_some() {
            p.push('S');
        }
        if self.authenticated.is_some() {
            p.push('A');
        }
        p
    }

    pub fn render(&self) -> Vec<u8> {
        let ip = match self.peer {
            IpAddr::V4(v4) => format!("[{v4}]"),
            IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
        };
        let mut h = format!(
            "Return-Path: <{}>\r\nReceived: from {} ({})\r\n\tby {} (Wharf) with {} id {}",
            self.sender.unwrap_or(""),
            sanitize(self.helo),
            ip,
            self.hostname,
            self.protocol(),
            self.id
        );
        if let Some((version, cipher)) = self.tls {
            h.push_str(&format!("\r\n\t(version={version} cipher={cipher})"));
        }
        if let Some(user) = self.authenticated {
            h.push_str(&format!("\r\n\t(authenticated user {})", sanitize(user)));
        }
        if let Some(rcpt) = self.single_recipient {
            h.push_str(&format!("\r\n\tfor <{rcpt}>"));
        }
        h.push_str(&format!(";\r\n\t{}\r\n", self.date));
        h.into_bytes()
    }
}

/// Client-chosen text inside a header: no parentheses or controls that could break the syntax.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '(' || c == ')' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_variants() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), 6);
        assert_eq!(header_end(b"\r\nbody"), 0);
        assert_eq!(header_end(b"A: b\r\n"), 6);
    }

    #[test]
    fn counts_fields_ignoring_continuations() {
        let h = b"From: a@x\r\nSubject: x\r\n from: no\r\nFROM : b@x\r\n";
        assert_eq!(count_header(h, "from"), 2);
        assert_eq!(count_header(h, "date"), 0);
    }

    #[test]
    fn inserts_at_end_of_header_section() {
        let mut raw = b"T: 1\r\nA: b\r\n\r\nbody".to_vec();
        insert_headers(&mut raw, 6, b"Date: x\r\n");
        assert_eq!(raw, b"T: 1\r\nA: b\r\nDate: x\r\n\r\nbody");
        let mut raw = b"A: b".to_vec();
        insert_headers(&mut raw, 0, b"Date: x\r\n");
        assert_eq!(raw, b"A: b\r\nDate: x\r\n");
    }

    #[test]
    fn from_addresses_parsed() {
        let v = from_addresses(b"From: \"A (x)\" <a@x.test>, b@y.test\r\n\r\nhi");
        assert_eq!(v, vec!["a@x.test".to_string(), "b@y.test".to_string()]);
    }

    #[test]
    fn received_has_tls_and_auth() {
        let t = Trace {
            hostname: "mx.test",
            helo: "client",
            peer: "127.0.0.1".parse().unwrap(),
            esmtp: true,
            tls: Some(("TLSv1.3", "TLS13_AES_128_GCM_SHA256")),
            authenticated: Some("u@x.test"),
            smtputf8: false,
            id: "abc",
            sender: Some("u@x.test"),
            single_recipient: Some("r@x.test"),
            date: "Sat, 1 Jan 2000 00:00:00 +0000",
        };
        let s = String::from_utf8(t.render()).unwrap();
        assert!(s.starts_with("Return-Path: <u@x.test>\r\nReceived: from client ([127.0.0.1])\r\n\tby mx.test (Wharf) with ESMTPSA id abc\r\n"));
        assert!(s.contains("(version=TLSv1.3 cipher=TLS13_AES_128_GCM_SHA256)"));
        assert!(s.contains("(authenticated user u@x.test)"));
        assert!(s.ends_with("for <r@x.test>;\r\n\tSat, 1 Jan 2000 00:00:00 +0000\r\n"));
    }
}
