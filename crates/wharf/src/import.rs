//! `wharf import`: moves mail from a Maildir (Maildir++ subfolders, Dovecot keywords) or an mbox
//! file into an account, keeping flags, keywords and internal dates. One message in memory at a time.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use wharf_store::{Account, Flags, MailboxId, Store, StoreError};

use crate::storage::store_err;

/// Messages imported per mailbox, in the order first met.
#[derive(Debug, Default)]
pub struct Report {
    pub per_mailbox: Vec<(String, usize)>,
}

impl Report {
    fn add(&mut self, mailbox: &str) {
        match self.per_mailbox.iter_mut().find(|(m, _)| m == mailbox) {
            Some((_, n)) => *n += 1,
            None => self.per_mailbox.push((mailbox.to_string(), 1)),
        }
    }
}

pub async fn import(
    store: &Arc<dyn Store>,
    account: &Account,
    path: &Path,
    mailbox: Option<&str>,
) -> Result<Report> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let target = mailbox.unwrap_or("INBOX");
    let mut report = Report::default();
    if meta.is_dir() {
        if !is_maildir(path) {
            bail!(
                "{} is not a Maildir (no cur/ or new/ folder) and not an mbox file",
                path.display()
            );
        }
        import_maildir_folder(store, account, path, target, &mut report).await?;
        for (dir, name) in maildirpp_subfolders(path)? {
            import_maildir_folder(store, account, &dir, &name, &mut report).await?;
        }
    } else {
        import_mbox(store, account, path, target, &mut report).await?;
    }
    Ok(report)
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// `.Sent`, `.Archive.2024` … → (folder, `Sent`), (folder, `Archive/2024`), sorted so parents come first.
fn maildirpp_subfolders(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let Some(stripped) = name.strip_prefix('.') else {
            continue;
        };
        if stripped.is_empty() || stripped == "." || !is_maildir(&entry.path()) {
            continue;
        }
        let parts: Vec<String> = stripped
            .split('.')
            .map(decode_mutf7)
            .collect::<Result<_>>()
            .with_context(|| format!("folder name {name}"))?;
        if parts.iter().any(String::is_empty) {
            continue;
        }
        out.push((entry.path(), parts.join("/")));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Modified UTF-7 (RFC 3501 §5.1.3), the encoding of Maildir++ folder names.
pub fn decode_mutf7(s: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .find('-')
            .ok_or_else(|| anyhow!("unterminated modified UTF-7 in {s:?}"))?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut units = Vec::new();
            for c in encoded.bytes() {
                let v = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a' + 26,
                    b'0'..=b'9' => c - b'0' + 52,
                    b'+' => 62,
                    b',' => 63,
                    _ => bail!("bad modified UTF-7 in {s:?}"),
                };
                bits = (bits << 6) | u32::from(v);
                nbits += 6;
                if nbits >= 16 {
                    nbits -= 16;
                    units.push(((bits >> nbits) & 0xffff) as u16);
                }
            }
            out.push_str(&String::from_utf16(&units).map_err(|_| anyhow!("bad UTF-16 in {s:?}"))?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) async fn ensure_mailbox(
    store: &Arc<dyn Store>,
    account: &Account,
    name: &str,
) -> Result<MailboxId> {
    // Parents first, so that `Archive/2024` has an `Archive` to live under.
    let mut path = String::new();
    let mut id = None;
    for part in name.split('/') {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
        id = Some(
            match store
                .get_mailbox(account.id, &path)
                .await
                .map_err(store_err)?
            {
                Some(mb) => mb.id,
                None => match store.create_mailbox(account.id, &path, None).await {
                    Ok(mb) => mb.id,
                    // Created meanwhile (an IMAP CREATE, another import).
                    Err(StoreError::AlreadyExists(_)) => {
                        store
                            .get_mailbox(account.id, &path)
                            .await
                            .map_err(store_err)?
                            .ok_or_else(|| anyhow!("mailbox {path} was deleted while created"))?
                            .id
                    }
                    Err(e) => return Err(store_err(e)),
                },
            },
        );
    }
    id.ok_or_else(|| anyhow!("empty mailbox name"))
}

/// Flags and keywords encoded in a Maildir file name (`…:2,FRS`), plus the name's leading timestamp.
#[derive(Debug, PartialEq, Eq)]
pub struct MaildirName {
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub timestamp: Option<i64>,
}

pub fn parse_maildir_name(name: &str, keyword_names: &BTreeMap<usize, String>) -> MaildirName {
    let (base, info) = match name.rsplit_once(":2,") {
        Some((b, i)) => (b, i),
        None => (name, ""),
    };
    let mut flags = Flags::empty();
    let mut keywords = Vec::new();
    for c in info.chars() {
        match c {
            'S' => flags = flags | Flags::SEEN,
            'R' => flags = flags | Flags::ANSWERED,
            'F' => flags = flags | Flags::FLAGGED,
            'D' => flags = flags | Flags::DRAFT,
            'T' => flags = flags | Flags::DELETED,
            'P' => keywords.push("$Forwarded".to_string()),
            'a'..='z' => {
                if let Some(k) = keyword_names.get(&usize::from(c as u8 - b'a')) {
                    keywords.push(k.clone());
                }
            }
            _ => {}
        }
    }
    keywords.sort_by_key(|k| k.to_ascii_lowercase());
    keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let timestamp = base
        .split('.')
        .next()
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| *t > 0);
    MaildirName {
        flags,
        keywords,
        timestamp,
    }
}

/// Dovecot's `dovecot-keywords`: lines `N name`, letter `a` + N in file names.
fn read_dovecot_keywords(dir: &Path) -> BTreeMap<usize, String> {
    let mut map = BTreeMap::new();
    if let Ok(text) = fs::read_to_string(dir.join("dovecot-keywords")) {
        for line in text.lines() {
            if let Some((n, name)) = line.trim().split_once(' ')
                && let Ok(n) = n.parse::<usize>()
                && n < 26
                && !name.trim().is_empty()
            {
                map.insert(n, name.trim().to_string());
            }
        }
    }
    map
}

async fn import_maildir_folder(
    store: &Arc<dyn Store>,
    account: &Account,
    dir: &Path,
    mailbox: &str,
    report: &mut Report,
) -> Result<()> {
    let keyword_names = read_dovecot_keywords(dir);
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            let parsed = parse_maildir_name(&name, &keyword_names);
            // Dovecot keeps INTERNALDATE in the file's mtime; a copy that lost it still has the
            // delivery time at the front of the name.
            let mtime = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .filter(|t| *t > 0);
            let date = mtime
                .or(parsed.timestamp)
                .unwrap_or_else(|| chrono::Utc::now().timestamp());
            files.push((date, name, entry.path(), parsed));
        }
    }
    if files.is_empty() {
        return Ok(());
    }
    files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mailbox_id = ensure_mailbox(store, account, mailbox).await?;
    for (date, _, path, parsed) in files {
        let raw = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        store
            .append(
                mailbox_id,
                Bytes::from(to_crlf(&raw)),
                parsed.flags,
                &parsed.keywords,
                date,
            )
            .await
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        report.add(mailbox);
    }
    Ok(())
}

/// Stored messages use CRLF line endings (IMAP and POP3 serve them as is).
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Headers that are mbox storage metadata rather than part of the message (as Dovecot strips them).
const MBOX_METADATA_HEADERS: &[&str] = &[
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imap",
    "x-imapbase",
];

/// One message cut out of an mbox: unquoted body, flags from Status/X-Status, date from the From_ line.
#[derive(Debug)]
pub struct MboxMessage {
    pub raw: Vec<u8>,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: Option<i64>,
    /// Longer than the reader's `max_message`: `raw` is empty, the message was read past.
    pub oversized: bool,
}

/// Splits an mbox stream into messages (From_ lines after a blank line; mboxrd `>From` unquoting).
pub struct MboxReader<R> {
    input: R,
    pending_from: Option<Vec<u8>>,
    done: bool,
    max_message: Option<usize>,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R) -> Self {
        MboxReader {
            input,
            pending_from: None,
            done: false,
            max_message: None,
        }
    }

    /// Bounds what one message may hold in memory (input from the network): a longer message
    /// comes back `oversized` and empty, and no line is read whole past the bound.
    pub fn with_max_message(mut self, octets: usize) -> Self {
        self.max_message = Some(octets);
        self
    }

    /// One line, or at most `max_message + 2` octets of one; false at the end of the input.
    fn read_line(&mut self, line: &mut Vec<u8>) -> std::io::Result<bool> {
        use std::io::Read as _;
        let n = match self.max_message {
            Some(max) => (&mut self.input)
                .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(2))
                .read_until(b'\n', line)?,
            None => self.input.read_until(b'\n', line)?,
        };
        Ok(n > 0)
    }

    pub fn next_message(&mut self) -> Result<Option<MboxMessage>> {
        if self.done {
            return Ok(None);
        }
        let from_line = match self.pending_from.take() {
            Some(l) => l,
            None => {
                // Start of file: skip leading blank lines, then require a From_ line.
                loop {
                    let mut line = Vec::new();
                    if !self.read_line(&mut line)? {
                        self.done = true;
                        return Ok(None);
                    }
                    if line.iter().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    if !line.starts_with(b"From ") {
                        bail!("not an mbox file: the first line does not start with \"From \"");
                    }
                    break line;
                }
            }
        };
        // Lines go into one contiguous buffer as they are read (a message of millions of short
        // lines must not cost a vector each). A blank line waits in `held_blank`: it belongs to
        // the separator if a From_ line follows.
        let mut message = Some(MboxBuilder::default());
        let mut held_blank: Option<Vec<u8>> = None;
        let mut held = 0usize;
        // Kept apart from the builder, which an oversized message drops.
        let mut prev_blank = true;
        let mut at_line_start = true;
        loop {
            let mut line = Vec::new();
            if !self.read_line(&mut line)? {
                self.done = true;
                break;
            }
            let starts_line = at_line_start;
            at_line_start = line.ends_with(b"\n");
            if starts_line && prev_blank && looks_like_from_line(&line) {
                self.pending_from = Some(line);
                // The blank line before a From_ line belongs to the separator.
                held_blank = None;
                break;
            }
            prev_blank = starts_line && is_blank(&line);
            let Some(m) = message.as_mut() else {
                continue;
            };
            held += line.len();
            if self.max_message.is_some_and(|max| held > max) {
                message = None;
                held_blank = None;
                continue;
            }
            if let Some(blank) = held_blank.take() {
                m.push(blank);
            }
            if prev_blank {
                held_blank = Some(line);
            } else {
                m.push(line);
            }
        }
        let Some(mut message) = message else {
            return Ok(Some(MboxMessage {
                raw: Vec::new(),
                flags: Flags::empty(),
                keywords: Vec::new(),
                internal_date: None,
                oversized: true,
            }));
        };
        if let Some(blank) = held_blank {
            message.push(blank);
        }
        Ok(Some(message.finish(&from_line)))
    }
}

/// A From_ separator carries a sender and an asctime date; a body line that merely starts with
/// "From " (unquoted, mboxo style) usually does not.
fn looks_like_from_line(line: &[u8]) -> bool {
    if !line.starts_with(b"From ") {
        return false;
    }
    if from_line_date(line).is_some() {
        return true;
    }
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_whitespace().collect();
    let has_time = words.iter().any(|w| {
        let parts: Vec<&str> = w.split(':').collect();
        (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let has_year = words
        .iter()
        .any(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()));
    words.len() >= 6 && has_time && has_year
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// One mbox message built line by line: the mbox metadata headers (Status, X-Status,
/// X-Keywords…) become flags and keywords and are left out, mboxrd quoting is undone.
#[derive(Default)]
struct MboxBuilder {
    raw: Vec<u8>,
    flags: Flags,
    keywords: Vec<String>,
    in_body: bool,
    skipping_header: bool,
    date_header: Option<String>,
    in_date: bool,
}

impl MboxBuilder {
    fn push(&mut self, mut line: Vec<u8>) {
        if !self.in_body {
            if is_blank(&line) {
                self.in_body = true;
            } else if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                if self.skipping_header {
                    return;
                }
                if self.in_date
                    && let Some(d) = &mut self.date_header
                {
                    d.push_str(&String::from_utf8_lossy(&line));
                }
            } else {
                self.in_date = false;
                self.skipping_header = false;
                let text = String::from_utf8_lossy(&line).into_owned();
                if let Some((name, value)) = text.split_once(':') {
                    let lname = name.trim().to_ascii_lowercase();
                    if MBOX_METADATA_HEADERS.contains(&lname.as_str()) {
                        self.skipping_header = true;
                        let value = value.trim();
                        match lname.as_str() {
                            "status" if value.contains('R') => {
                                self.flags = self.flags | Flags::SEEN;
                            }
                            "x-status" => {
                                for c in value.chars() {
                                    match c {
                                        'A' => self.flags = self.flags | Flags::ANSWERED,
                                        'F' => self.flags = self.flags | Flags::FLAGGED,
                                        'T' => self.flags = self.flags | Flags::DRAFT,
                                        'D' => self.flags = self.flags | Flags::DELETED,
                                        _ => {}
                                    }
                                }
                            }
                            "x-keywords" => self.keywords.extend(
                                value
                                    .split([',', ' '])
                                    .filter(|k| !k.is_empty())
                                    .map(str::to_string),
                            ),
                            _ => {}
                        }
                        return;
                    }
                    if lname == "date" {
                        self.in_date = true;
                        self.date_header = Some(value.to_string());
                    }
                }
            }
        } else if let Some(pos) = line.iter().position(|b| *b != b'>')
            && pos > 0
            && line[pos..].starts_with(b"From ")
        {
            // mboxrd: one level of quoting was added when the message was written.
            line.remove(0);
        }
        self.raw.extend_from_slice(&line);
    }

    fn finish(self, from_line: &[u8]) -> MboxMessage {
        let mut keywords = self.keywords;
        keywords.sort_by_key(|k| k.to_ascii_lowercase());
        keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let date_header = self.date_header;
        let internal_date = from_line_date(from_line).or_else(|| {
            date_header.and_then(|d| {
                chrono::DateTime::parse_from_rfc2822(d.trim())
                    .ok()
                    .map(|t| t.timestamp())
            })
        });
        MboxMessage {
            raw: to_crlf(&self.raw),
            flags: self.flags,
            keywords,
            internal_date,
            oversized: false,
        }
    }
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `From sender Sat Jan  3 01:05:34 1996` → Unix seconds (asctime, taken as UTC).
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    words.next()?; // "From"
    words.next()?; // envelope sender
    let rest: Vec<&str> = words.collect();
    // Some writers put a numeric zone before the year; drop it.
    // The weekday is redundant (and sometimes wrong): skip it rather than reject the date.
    let cleaned: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|w| !(w.starts_with(['+', '-']) && w.len() == 5))
        .skip_while(|w| WEEKDAYS.iter().any(|d| w.eq_ignore_ascii_case(d)))
        .collect();
    let joined = cleaned.join(" ");
    chrono::NaiveDateTime::parse_from_str(&joined, "%b %d %H:%M:%S %Y")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

async fn import_mbox(
    store: &Arc<dyn Store>,
    account: &Account,
    path: &Path,
    mailbox: &str,
    report: &mut Report,
) -> Result<()> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = MboxReader::new(BufReader::new(file));
    let mut mailbox_id = None;
    let mut n = 0usize;
    while let Some(msg) = reader
        .next_message()
        .with_context(|| format!("{}", path.display()))?
    {
        n += 1;
        let id = match mailbox_id {
            Some(id) => id,
            None => {
                let id = ensure_mailbox(store, account, mailbox).await?;
                mailbox_id = Some(id);
                id
            }
        };
        let date = msg
            .internal_date
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        store
            .append(id, Bytes::from(msg.raw), msg.flags, &msg.keywords, date)
            .await
            .map_err(|e| anyhow!("{} message {n}: {e}", path.display()))?;
        report.add(mailbox);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_names() {
        let mut kw = BTreeMap::new();
        kw.insert(0, "$Junk".to_string());
        kw.insert(1, "work".to_string());
        let n = parse_maildir_name("1700000000.M1P2.host,S=123:2,FRSTab", &kw);
        assert_eq!(
            n.flags,
            Flags::FLAGGED | Flags::ANSWERED | Flags::SEEN | Flags::DELETED
        );
        assert_eq!(n.keywords, vec!["$Junk".to_string(), "work".to_string()]);
        assert_eq!(n.timestamp, Some(1_700_000_000));
        let n = parse_maildir_name("1700000001.x.host", &kw);
        assert_eq!(n.flags, Flags::empty());
        let n = parse_maildir_name("weird:2,DP", &kw);
        assert_eq!(n.flags, Flags::DRAFT);
        assert_eq!(n.keywords, vec!["$Forwarded".to_string()]);
        assert_eq!(n.timestamp, None);
    }

    #[test]
    fn mutf7() {
        assert_eq!(decode_mutf7("Sent").unwrap(), "Sent");
        assert_eq!(decode_mutf7("Entw&APw-rfe").unwrap(), "Entwürfe");
        assert_eq!(decode_mutf7("A&-B").unwrap(), "A&B");
        assert_eq!(decode_mutf7("&ZeVnLIqe-").unwrap(), "日本語");
        assert!(decode_mutf7("&abc").is_err());
    }

    #[test]
    fn mbox_split_unquote_flags() {
        let text = b"From alice@example.com Sat Jan  3 01:05:34 1996\n\
Subject: one\nStatus: RO\nX-Status: AF\n\nbody\n>From the start\n>>From deeper\n\n\
From bob@example.com Sun Jan  4 10:00:00 1996\nSubject: two\nDate: Mon, 5 Jan 1996 00:00:00 +0000\n\nFrom here is not a separator\n";
        let mut r = MboxReader::new(&text[..]);
        let m1 = r.next_message().unwrap().unwrap();
        assert_eq!(
            String::from_utf8(m1.raw).unwrap(),
            "Subject: one\r\n\r\nbody\r\nFrom the start\r\n>From deeper\r\n"
        );
        assert_eq!(m1.flags, Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED);
        assert_eq!(m1.internal_date, Some(820_631_134));
        let m2 = r.next_message().unwrap().unwrap();
        assert_eq!(
            String::from_utf8(m2.raw).unwrap(),
            "Subject: two\r\nDate: Mon, 5 Jan 1996 00:00:00 +0000\r\n\r\nFrom here is not a separator\r\n"
        );
        assert_eq!(m2.flags, Flags::empty());
        assert_eq!(m2.internal_date, Some(820_749_600));
        assert!(r.next_message().unwrap().is_none());
    }

    #[test]
    fn oversized_messages_are_passed_over() {
        let big = "x".repeat(300);
        let text = format!(
            "From a@b.c Sat Jan  3 01:05:34 1996\nSubject: big\n\n{big}\n{big}\n\n\
From a@b.c Sat Jan  3 01:05:35 1996\nSubject: small\n\nhi\n"
        );
        let mut r = MboxReader::new(text.as_bytes()).with_max_message(200);
        let m1 = r.next_message().unwrap().unwrap();
        assert!(m1.oversized && m1.raw.is_empty());
        let m2 = r.next_message().unwrap().unwrap();
        assert!(!m2.oversized);
        assert_eq!(m2.raw, b"Subject: small\r\n\r\nhi\r\n".to_vec());
        assert!(r.next_message().unwrap().is_none());
    }

    #[test]
    fn not_an_mbox() {
        let mut r = MboxReader::new(&b"Subject: hi\n\nbody\n"[..]);
        assert!(r.next_message().is_err());
        let mut r = MboxReader::new(&b""[..]);
        assert!(r.next_message().unwrap().is_none());
    }

    #[test]
    fn crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc".to_vec());
    }
}
