//! Tokens of the IMAP grammar (RFC 9051 §9): atoms, numbers, strings (quoted and literal),
//! astrings, mailbox names, sequence sets, flags and dates — the primitives every command
//! family's parser builds on.

use chrono::NaiveDate;

use super::PResult;
use crate::syntax::command::*;

fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

pub(super) struct Parser<'a> {
    pub(super) s: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        &self.s[self.pos.min(self.s.len())..]
    }

    pub(super) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, b: u8) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}'", b as char))
        }
    }

    pub(super) fn sp(&mut self) -> PResult<()> {
        if self.eat(b' ') {
            Ok(())
        } else {
            Err("expected a space".into())
        }
    }

    pub(super) fn at_end(&self) -> bool {
        matches!(self.rest(), b"" | b"\r\n" | b"\n")
    }

    pub(super) fn crlf(&mut self) -> PResult<()> {
        if self.at_end() {
            self.pos = self.s.len();
            Ok(())
        } else {
            Err("unexpected text at end of command".into())
        }
    }

    /// Case-insensitive keyword followed by a non-atom character.
    pub(super) fn keyword(&mut self, kw: &str) -> bool {
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

    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    pub(super) fn tag(&mut self) -> PResult<String> {
        let t = self.take_while(|b| is_astring_char(b) && b != b'+');
        if t.is_empty() {
            return Err("missing or invalid tag".into());
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    pub(super) fn atom(&mut self) -> PResult<String> {
        let t = self.take_while(is_atom_char);
        if t.is_empty() {
            return Err("expected an atom".into());
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    pub(super) fn number(&mut self) -> PResult<u32> {
        let t = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "expected a number".to_string())
    }

    pub(super) fn number64(&mut self) -> PResult<u64> {
        let t = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "expected a number".to_string())
    }

    pub(super) fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => Err("zero is not a valid message number".into()),
            n => Ok(n),
        }
    }

    pub(super) fn quoted(&mut self) -> PResult<Vec<u8>> {
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

    pub(super) fn literal(&mut self) -> PResult<Vec<u8>> {
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

    pub(super) fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') | Some(b'~') => self.literal(),
            _ => Err("expected a string".into()),
        }
    }

    pub(super) fn astring_bytes(&mut self) -> PResult<Vec<u8>> {
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

    pub(super) fn utf8(b: Vec<u8>) -> PResult<String> {
        String::from_utf8(b).map_err(|_| "string is not valid UTF-8".to_string())
    }

    pub(super) fn astring(&mut self) -> PResult<String> {
        let b = self.astring_bytes()?;
        Self::utf8(b)
    }

    pub(super) fn nstring(&mut self) -> PResult<Option<String>> {
        if self.keyword("NIL") {
            return Ok(None);
        }
        let b = self.string()?;
        Ok(Some(Self::utf8(b)?))
    }

    pub(super) fn mailbox(&mut self) -> PResult<String> {
        self.astring()
    }

    pub(super) fn list_mailbox(&mut self) -> PResult<String> {
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

    pub(super) fn seq_num(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else {
            Ok(SeqNum::Num(self.nz_number()?))
        }
    }

    pub(super) fn seq_set(&mut self) -> PResult<SeqSet> {
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

    pub(super) fn flag(&mut self) -> PResult<Flag> {
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

    pub(super) fn flag_list(&mut self) -> PResult<Vec<Flag>> {
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

    pub(super) fn date(&mut self) -> PResult<NaiveDate> {
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

    pub(super) fn date_time(&mut self) -> PResult<i64> {
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

    /// mod-sequence-value (RFC 7162 §7): 1 to 2^63-1.
    pub(super) fn mod_sequence(&mut self) -> PResult<u64> {
        match self.mod_sequence_valzer()? {
            0 => Err("a mod-sequence is at least 1".into()),
            n => Ok(n),
        }
    }

    /// mod-sequence-valzer (RFC 7162 §7): 0 to 2^63-1.
    pub(super) fn mod_sequence_valzer(&mut self) -> PResult<u64> {
        match self.number64()? {
            n if n > i64::MAX as u64 => Err("mod-sequence out of range".into()),
            n => Ok(n),
        }
    }

    /// The items of a parenthesised, space-separated list whose `(` is already consumed, up to and
    /// including its `)`. `item` parses one element (it may read past the atom, e.g. `STATUS (…)`).
    pub(super) fn items_until_close(
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
