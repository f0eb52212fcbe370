//! The command parser: one complete command (its line, and every literal inline as
//! `{n}\r\n<n octets>`, as the framer collected them) to a `Command`. A pure function over bytes
//! that never panics and bounds its recursion, so it is the fuzzing entry point.

use chrono::NaiveDate;

use super::command::*;

/// Deepest nesting of search-key parentheses/NOT/OR accepted.
const MAX_DEPTH: usize = 32;

/// Why a command could not be parsed; `tag` is set when the tag itself was readable so the BAD
/// reply can carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

type PResult<T> = Result<T, String>;

/// Parses one complete command.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser { s: input, pos: 0 };
    let tag = match p.tag() {
        Ok(t) => t,
        Err(message) => return Err(ParseError { tag: None, message }),
    };
    let res = p.sp().and_then(|_| p.command_body());
    match res {
        Ok(kind) => match p.crlf() {
            Ok(()) => Ok(Command { tag, kind }),
            Err(message) => Err(ParseError {
                tag: Some(tag),
                message,
            }),
        },
        Err(message) => Err(ParseError {
            tag: Some(tag),
            message,
        }),
    }
}

/// A literal announced at the end of a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralHeader {
    pub len: u64,
    /// `{n+}` (RFC 7888): the client does not wait for a continuation request.
    pub non_sync: bool,
}

/// Looks at a line as received (ending in LF) and reports the literal it announces, if any.
pub fn literal_at_end(line: &[u8]) -> Option<LiteralHeader> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let mut digits = &body[open + 1..];
    let non_sync = digits.last() == Some(&b'+');
    if non_sync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(LiteralHeader { len, non_sync })
}

fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.pos.min(self.s.len())..]
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}'", b as char))
        }
    }

    fn sp(&mut self) -> PResult<()> {
        if self.eat(b' ') {
            Ok(())
        } else {
            Err("expected a space".into())
        }
    }

    fn at_end(&self) -> bool {
        matches!(self.rest(), b"" | b"\r\n" | b"\n")
    }

    fn crlf(&mut self) -> PResult<()> {
        if self.at_end() {
            self.pos = self.s.len();
            Ok(())
        } else {
            Err("unexpected text at end of command".into())
        }
    }

    /// Case-insensitive keyword followed by a non-atom character.
    fn keyword(&mut self, kw: &str) -> bool {
        let k = kw.as_bytes();
        let r = self.rest();
        if r.len() >= k.len()
            && r[..k.len()].eq_ignore_ascii_case(k)
            && r.get(k.len())
                .is_none_or(|&b| !is_atom_char(b) || kw.ends_with('['))
        {
            self.pos += k.len();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn tag(&mut self) -> PResult<String> {
        let t = self.take_while(|b| is_astring_char(b) && b != b'+');
        if t.is_empty() {
            return Err("missing or invalid tag".into());
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    fn atom(&mut self) -> PResult<String> {
        let t = self.take_while(is_atom_char);
        if t.is_empty() {
            return Err("expected an atom".into());
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    fn number(&mut self) -> PResult<u32> {
        let t = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "expected a number".to_string())
    }

    fn number64(&mut self) -> PResult<u64> {
        let t = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "expected a number".to_string())
    }

    fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => Err("zero is not a valid message number".into()),
            n => Ok(n),
        }
    }

    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') | Some(0) => {
                    return Err("unterminated quoted string".into());
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return Err("invalid escape in quoted string".into()),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> PResult<Vec<u8>> {
        self.eat(b'~');
        self.expect(b'{')?;
        let n = self.number64()?;
        self.eat(b'+');
        self.expect(b'}')?;
        if !self.eat(b'\r') {
            // bare LF after a literal header is tolerated like on command lines
        }
        self.expect(b'\n')?;
        let n = usize::try_from(n).map_err(|_| "literal too large".to_string())?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.s.len())
            .ok_or_else(|| "literal shorter than announced".to_string())?;
        let data = self.s[self.pos..end].to_vec();
        self.pos = end;
        Ok(data)
    }

    fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') | Some(b'~') => self.literal(),
            _ => Err("expected a string".into()),
        }
    }

    fn astring_bytes(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let t = self.take_while(is_astring_char);
                if t.is_empty() {
                    Err("expected an atom or string".into())
                } else {
                    Ok(t.to_vec())
                }
            }
        }
    }

    fn utf8(b: Vec<u8>) -> PResult<String> {
        String::from_utf8(b).map_err(|_| "string is not valid UTF-8".to_string())
    }

    fn astring(&mut self) -> PResult<String> {
        let b = self.astring_bytes()?;
        Self::utf8(b)
    }

    fn nstring(&mut self) -> PResult<Option<String>> {
        if self.keyword("NIL") {
            return Ok(None);
        }
        let b = self.string()?;
        Ok(Some(Self::utf8(b)?))
    }

    fn mailbox(&mut self) -> PResult<String> {
        self.astring()
    }

    fn list_mailbox(&mut self) -> PResult<String> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.astring(),
            _ => {
                let t = self.take_while(is_list_char);
                if t.is_empty() {
                    Err("expected a mailbox pattern".into())
                } else {
                    Ok(String::from_utf8_lossy(t).into_owned())
                }
            }
        }
    }

    fn seq_num(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else {
            Ok(SeqNum::Num(self.nz_number()?))
        }
    }

    fn seq_set(&mut self) -> PResult<SeqSet> {
        if self.eat(b'$') {
            return Ok(SeqSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            ranges.push((a, b));
            if ranges.len() > 100_000 {
                return Err("sequence set too long".into());
            }
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SeqSet::Ranges(ranges))
    }

    fn flag(&mut self) -> PResult<Flag> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok(Flag("\\*".into()));
            }
            let a = self.atom()?;
            Ok(Flag(format!("\\{a}")))
        } else {
            Ok(Flag(self.atom()?))
        }
    }

    fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    fn date(&mut self) -> PResult<NaiveDate> {
        let quoted = self.eat(b'"');
        let day = self.number()?;
        self.expect(b'-')?;
        let m = self.take_while(|b| b.is_ascii_alphabetic());
        let month = month_number(m).ok_or_else(|| "invalid month".to_string())?;
        self.expect(b'-')?;
        let year = self.number()?;
        if quoted {
            self.expect(b'"')?;
        }
        NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| "invalid date".to_string())
    }

    fn date_time(&mut self) -> PResult<i64> {
        self.expect(b'"')?;
        self.eat(b' ');
        let day = self.number()?;
        self.expect(b'-')?;
        let m = self.take_while(|b| b.is_ascii_alphabetic());
        let month = month_number(m).ok_or_else(|| "invalid month".to_string())?;
        self.expect(b'-')?;
        let year = self.number()?;
        self.sp()?;
        let h = self.number()?;
        self.expect(b':')?;
        let mi = self.number()?;
        self.expect(b':')?;
        let s = self.number()?;
        self.sp()?;
        let sign: i64 = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return Err("invalid zone".into());
        };
        let z = self.take_while(|b| b.is_ascii_digit());
        if z.len() != 4 {
            return Err("invalid zone".into());
        }
        let zn: i64 = std::str::from_utf8(z)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or("invalid zone")?;
        self.expect(b'"')?;
        let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("invalid date")?;
        let dt = date.and_hms_opt(h, mi, s).ok_or("invalid time")?;
        let offset = sign * ((zn / 100) * 3600 + (zn % 100) * 60);
        Ok(dt.and_utc().timestamp() - offset)
    }

    fn command_body(&mut self) -> PResult<CommandKind> {
        let name = self.atom()?.to_ascii_uppercase();
        let k = match name.as_str() {
            "CAPABILITY" => CommandKind::Capability,
            "NOOP" => CommandKind::Noop,
            "LOGOUT" => CommandKind::Logout,
            "STARTTLS" => CommandKind::StartTls,
            "NAMESPACE" => CommandKind::Namespace,
            "IDLE" => CommandKind::Idle,
            "CHECK" => CommandKind::Check,
            "CLOSE" => CommandKind::Close,
            "UNSELECT" => CommandKind::Unselect,
            "EXPUNGE" => CommandKind::Expunge,
            "LOGIN" => {
                self.sp()?;
                let user = self.astring()?;
                self.sp()?;
                let pass = self.astring()?;
                CommandKind::Login { user, pass }
            }
            "AUTHENTICATE" => {
                self.sp()?;
                let mechanism = self.atom()?.to_ascii_uppercase();
                let initial = if self.eat(b' ') {
                    let t = self.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                    if t.is_empty() {
                        return Err("invalid initial response".into());
                    }
                    Some(String::from_utf8_lossy(t).into_owned())
                } else {
                    None
                };
                CommandKind::Authenticate { mechanism, initial }
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.atom()?);
                }
                if caps.is_empty() {
                    return Err("ENABLE needs at least one capability".into());
                }
                CommandKind::Enable(caps)
            }
            "ID" => {
                self.sp()?;
                if self.keyword("NIL") {
                    CommandKind::Id(None)
                } else {
                    self.expect(b'(')?;
                    let mut params = Vec::new();
                    if !self.eat(b')') {
                        loop {
                            let k = Self::utf8(self.string()?)?;
                            self.sp()?;
                            let v = self.nstring()?;
                            params.push((k, v));
                            if params.len() > 30 {
                                return Err("too many ID parameters".into());
                            }
                            if self.eat(b')') {
                                break;
                            }
                            self.sp()?;
                        }
                    }
                    CommandKind::Id(Some(params))
                }
            }
            "SELECT" | "EXAMINE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                if self.eat(b' ') {
                    // select-params such as (CONDSTORE): accepted and ignored in this revision.
                    self.skip_paren_list()?;
                }
                CommandKind::Select {
                    mailbox,
                    read_only: name == "EXAMINE",
                }
            }
            "CREATE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if self.eat(b' ') {
                    self.expect(b'(')?;
                    if !self.keyword("USE") {
                        return Err("unknown CREATE parameter".into());
                    }
                    self.sp()?;
                    self.expect(b'(')?;
                    loop {
                        let f = self.flag()?;
                        special_use.push(f.0);
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                    self.expect(b')')?;
                }
                CommandKind::Create {
                    mailbox,
                    special_use,
                }
            }
            "DELETE" => {
                self.sp()?;
                CommandKind::Delete(self.mailbox()?)
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                CommandKind::Rename { from, to }
            }
            "SUBSCRIBE" => {
                self.sp()?;
                CommandKind::Subscribe(self.mailbox()?)
            }
            "UNSUBSCRIBE" => {
                self.sp()?;
                CommandKind::Unsubscribe(self.mailbox()?)
            }
            "LIST" => self.list()?,
            "LSUB" => {
                self.sp()?;
                let reference = self.mailbox()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandKind::Lsub { reference, pattern }
            }
            "STATUS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let items = self.status_items()?;
                CommandKind::Status { mailbox, items }
            }
            "APPEND" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let mut flags = Vec::new();
                let mut date = None;
                if self.peek() == Some(b'(') {
                    flags = self.flag_list()?;
                    self.sp()?;
                }
                if self.peek() == Some(b'"') {
                    date = Some(self.date_time()?);
                    self.sp()?;
                }
                // RFC 6855 §4: `UTF8 (literal8)` carries a message with UTF-8 headers.
                let message = if self.keyword("UTF8") {
                    self.sp()?;
                    self.expect(b'(')?;
                    let m = self.literal()?;
                    self.expect(b')')?;
                    m
                } else {
                    self.literal()?
                };
                CommandKind::Append {
                    mailbox,
                    flags,
                    date,
                    message,
                }
            }
            "SEARCH" => self.search(false)?,
            "FETCH" => self.fetch(false)?,
            "STORE" => self.store(false)?,
            "COPY" => self.copy_move(false, false)?,
            "MOVE" => self.copy_move(false, true)?,
            "UID" => {
                self.sp()?;
                let sub = self.atom()?.to_ascii_uppercase();
                match sub.as_str() {
                    "SEARCH" => self.search(true)?,
                    "FETCH" => self.fetch(true)?,
                    "STORE" => self.store(true)?,
                    "COPY" => self.copy_move(true, false)?,
                    "MOVE" => self.copy_move(true, true)?,
                    "EXPUNGE" => {
                        self.sp()?;
                        CommandKind::UidExpunge(self.seq_set()?)
                    }
                    _ => return Err(format!("unknown UID command {sub}")),
                }
            }
            _ => return Err(format!("unknown command {name}")),
        };
        Ok(k)
    }

    /// Skips a balanced parenthesised list of atoms/strings/numbers (ignored parameters).
    fn skip_paren_list(&mut self) -> PResult<()> {
        self.expect(b'(')?;
        let mut depth = 1usize;
        while depth > 0 {
            match self.peek() {
                None => return Err("unbalanced parentheses".into()),
                Some(b'(') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err("nesting too deep".into());
                    }
                    self.pos += 1;
                }
                Some(b')') => {
                    depth -= 1;
                    self.pos += 1;
                }
                Some(b'"') | Some(b'{') => {
                    self.string()?;
                }
                Some(b'\r') | Some(b'\n') => return Err("unbalanced parentheses".into()),
                Some(_) => self.pos += 1,
            }
        }
        Ok(())
    }

    /// The items of a parenthesised, space-separated list whose `(` is already consumed, up to and
    /// including its `)`. `item` parses one element (it may read past the atom, e.g. `STATUS (…)`).
    fn items_until_close(
        &mut self,
        allow_empty: bool,
        mut item: impl FnMut(&mut Self) -> PResult<()>,
    ) -> PResult<()> {
        if allow_empty && self.eat(b')') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.eat(b')') {
                return Ok(());
            }
            self.sp()?;
        }
    }

    fn status_items(&mut self) -> PResult<Vec<StatusItem>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        self.items_until_close(false, |p| {
            let a = p.atom()?.to_ascii_uppercase();
            items.push(match a.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "RECENT" => StatusItem::Recent,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                _ => return Err(format!("unknown status item {a}")),
            });
            Ok(())
        })?;
        Ok(items)
    }

    fn list(&mut self) -> PResult<CommandKind> {
        self.sp()?;
        let mut select = ListSelect::default();
        let mut extended = false;
        if self.eat(b'(') {
            extended = true;
            self.items_until_close(true, |p| {
                let o = p.atom()?.to_ascii_uppercase();
                match o.as_str() {
                    "SUBSCRIBED" => select.subscribed = true,
                    "REMOTE" => select.remote = true,
                    "RECURSIVEMATCH" => select.recursive_match = true,
                    "SPECIAL-USE" => select.special_use = true,
                    _ => return Err(format!("unknown LIST selection option {o}")),
                }
                Ok(())
            })?;
            if select.recursive_match && !(select.subscribed || select.special_use) {
                return Err("RECURSIVEMATCH needs another selection option".into());
            }
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            extended = true;
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut ret = ListReturn::default();
        if self.eat(b' ') {
            extended = true;
            if !self.keyword("RETURN") {
                return Err("expected RETURN".into());
            }
            self.sp()?;
            self.expect(b'(')?;
            self.items_until_close(true, |p| {
                let o = p.atom()?.to_ascii_uppercase();
                match o.as_str() {
                    "SUBSCRIBED" => ret.subscribed = true,
                    "CHILDREN" => ret.children = true,
                    "SPECIAL-USE" => ret.special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        ret.status = Some(p.status_items()?);
                    }
                    _ => return Err(format!("unknown LIST return option {o}")),
                }
                Ok(())
            })?;
        }
        Ok(CommandKind::List {
            reference,
            patterns,
            select,
            ret,
            extended,
        })
    }

    fn search(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let mut ret = None;
        if self.keyword("RETURN") {
            self.sp()?;
            self.expect(b'(')?;
            let mut opts = Vec::new();
            self.items_until_close(true, |p| {
                let o = p.atom()?.to_ascii_uppercase();
                opts.push(match o.as_str() {
                    "MIN" => SearchReturn::Min,
                    "MAX" => SearchReturn::Max,
                    "ALL" => SearchReturn::All,
                    "COUNT" => SearchReturn::Count,
                    "SAVE" => SearchReturn::Save,
                    _ => return Err(format!("unknown SEARCH return option {o}")),
                });
                Ok(())
            })?;
            ret = Some(opts);
            self.sp()?;
        }
        let mut charset = None;
        if self.keyword("CHARSET") {
            self.sp()?;
            charset = Some(self.astring()?);
            self.sp()?;
        }
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        let key = if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        };
        Ok(CommandKind::Search {
            uid,
            ret,
            charset,
            key,
        })
    }

    fn search_key(&mut self, depth: usize) -> PResult<SearchKey> {
        if depth > MAX_DEPTH {
            return Err("search keys nested too deeply".into());
        }
        if self.eat(b'(') {
            let mut keys = vec![self.search_key(depth + 1)?];
            while self.eat(b' ') {
                keys.push(self.search_key(depth + 1)?);
            }
            self.expect(b')')?;
            return Ok(if keys.len() == 1 {
                keys.pop().unwrap_or(SearchKey::All)
            } else {
                SearchKey::And(keys)
            });
        }
        if matches!(self.peek(), Some(b'0'..=b'9' | b'*' | b'$')) {
            return Ok(SearchKey::SeqSet(self.seq_set()?));
        }
        let a = self.atom()?.to_ascii_uppercase();
        let key = match a.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "SEEN" => SearchKey::Seen,
            "RECENT" => SearchKey::Recent,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "KEYWORD" => {
                self.sp()?;
                SearchKey::Keyword(self.atom()?)
            }
            "UNKEYWORD" => {
                self.sp()?;
                SearchKey::Unkeyword(self.atom()?)
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                self.sp()?;
                let d = self.date()?;
                match a.as_str() {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    _ => SearchKey::SentSince(d),
                }
            }
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64()?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64()?)
            }
            "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
                self.sp()?;
                let s = self.astring()?;
                match a.as_str() {
                    "BCC" => SearchKey::Bcc(s),
                    "BODY" => SearchKey::Body(s),
                    "CC" => SearchKey::Cc(s),
                    "FROM" => SearchKey::From(s),
                    "SUBJECT" => SearchKey::Subject(s),
                    "TEXT" => SearchKey::Text(s),
                    _ => SearchKey::To(s),
                }
            }
            "HEADER" => {
                self.sp()?;
                let name = self.astring()?;
                self.sp()?;
                let value = self.astring()?;
                SearchKey::Header(name, value)
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.seq_set()?)
            }
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let l = self.search_key(depth + 1)?;
                self.sp()?;
                let r = self.search_key(depth + 1)?;
                SearchKey::Or(Box::new(l), Box::new(r))
            }
            _ => return Err(format!("unknown search key {a}")),
        };
        Ok(key)
    }

    fn fetch(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        let mut items = Vec::new();
        if self.eat(b'(') {
            loop {
                self.fetch_att(&mut items)?;
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else if self.keyword("ALL") {
            items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
            ]);
        } else if self.keyword("FAST") {
            items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
            ]);
        } else if self.keyword("FULL") {
            items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
                FetchItem::Body,
            ]);
        } else {
            self.fetch_att(&mut items)?;
        }
        if self.eat(b' ') {
            // fetch modifiers such as (CHANGEDSINCE n) belong to CONDSTORE, not advertised here.
            return Err("FETCH modifiers are not supported".into());
        }
        Ok(CommandKind::Fetch { uid, set, items })
    }

    fn fetch_att(&mut self, items: &mut Vec<FetchItem>) -> PResult<()> {
        if items.len() > 100 {
            return Err("too many FETCH items".into());
        }
        let item = if self.keyword("BODY.PEEK[") {
            self.body_section(true)?
        } else if self.keyword("BODY[") {
            self.body_section(false)?
        } else if self.keyword("BINARY.PEEK[") {
            self.binary_section(true)?
        } else if self.keyword("BINARY.SIZE[") {
            let part = self.section_part_only()?;
            FetchItem::BinarySize { part }
        } else if self.keyword("BINARY[") {
            self.binary_section(false)?
        } else {
            let a = self.atom()?.to_ascii_uppercase();
            match a.as_str() {
                "FLAGS" => FetchItem::Flags,
                "INTERNALDATE" => FetchItem::InternalDate,
                "RFC822.SIZE" => FetchItem::Rfc822Size,
                "ENVELOPE" => FetchItem::Envelope,
                "BODY" => FetchItem::Body,
                "BODYSTRUCTURE" => FetchItem::BodyStructure,
                "UID" => FetchItem::Uid,
                "RFC822" => FetchItem::Rfc822,
                "RFC822.HEADER" => FetchItem::Rfc822Header,
                "RFC822.TEXT" => FetchItem::Rfc822Text,
                "MODSEQ" => FetchItem::ModSeq,
                _ => return Err(format!("unknown FETCH item {a}")),
            }
        };
        items.push(item);
        Ok(())
    }

    fn partial(&mut self) -> PResult<Option<(u32, u32)>> {
        if self.eat(b'<') {
            let start = self.number()?;
            self.expect(b'.')?;
            let len = self.nz_number()?;
            self.expect(b'>')?;
            Ok(Some((start, len)))
        } else {
            Ok(None)
        }
    }

    fn section_part_only(&mut self) -> PResult<Vec<u32>> {
        let mut part = Vec::new();
        if !self.eat(b']') {
            loop {
                part.push(self.nz_number()?);
                if part.len() > 64 {
                    return Err("section part too deep".into());
                }
                if self.eat(b']') {
                    break;
                }
                self.expect(b'.')?;
            }
        }
        Ok(part)
    }

    fn binary_section(&mut self, peek: bool) -> PResult<FetchItem> {
        let part = self.section_part_only()?;
        let partial = self.partial()?;
        Ok(FetchItem::Binary {
            peek,
            part,
            partial,
        })
    }

    fn body_section(&mut self, peek: bool) -> PResult<FetchItem> {
        let mut part = Vec::new();
        let mut spec = SectionSpec::Full;
        if !self.eat(b']') {
            loop {
                if matches!(self.peek(), Some(b'1'..=b'9')) {
                    part.push(self.nz_number()?);
                    if part.len() > 64 {
                        return Err("section part too deep".into());
                    }
                    if self.eat(b'.') {
                        continue;
                    }
                    break;
                }
                let a = self.atom()?.to_ascii_uppercase();
                spec = match a.as_str() {
                    "HEADER" => SectionSpec::Header,
                    "TEXT" => SectionSpec::Text,
                    "MIME" if !part.is_empty() => SectionSpec::Mime,
                    "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                        self.sp()?;
                        self.expect(b'(')?;
                        let mut names = Vec::new();
                        loop {
                            names.push(self.astring()?);
                            if names.len() > 200 {
                                return Err("too many header names".into());
                            }
                            if self.eat(b')') {
                                break;
                            }
                            self.sp()?;
                        }
                        SectionSpec::HeaderFields {
                            names,
                            not: a.ends_with(".NOT"),
                        }
                    }
                    _ => return Err(format!("invalid section text {a}")),
                };
                break;
            }
            self.expect(b']')?;
        }
        let partial = self.partial()?;
        Ok(FetchItem::BodySection {
            peek,
            section: Section { part, spec },
            partial,
        })
    }

    fn store(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        if self.peek() == Some(b'(') {
            // store-modifiers (UNCHANGEDSINCE) belong to CONDSTORE, not advertised here.
            return Err("STORE modifiers are not supported".into());
        }
        let op = if self.eat(b'+') {
            StoreOp::Add
        } else if self.eat(b'-') {
            StoreOp::Remove
        } else {
            StoreOp::Replace
        };
        let silent = if self.keyword("FLAGS.SILENT") {
            true
        } else if self.keyword("FLAGS") {
            false
        } else {
            return Err("expected FLAGS or FLAGS.SILENT".into());
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut f = vec![self.flag()?];
            while self.eat(b' ') {
                f.push(self.flag()?);
            }
            f
        };
        Ok(CommandKind::Store {
            uid,
            set,
            op,
            silent,
            flags,
        })
    }

    fn copy_move(&mut self, uid: bool, is_move: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if is_move {
            CommandKind::Move { uid, set, mailbox }
        } else {
            CommandKind::Copy { uid, set, mailbox }
        })
    }
}

fn month_number(m: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    MONTHS
        .iter()
        .position(|x| x.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}
