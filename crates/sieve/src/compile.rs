//! Syntax tree → checked `Script`. Owns every rule a script can break before it ever runs:
//! `require` placement and coverage, known command/test names, tagged arguments and their values,
//! argument counts and types, comparator and match-type compatibility, `if`/`elsif`/`else` order,
//! and literal values that must be well formed (addresses, header names, zones, date parts).

use std::collections::HashSet;

use crate::capability;
use crate::date::{DatePart, Zone};
use crate::error::CompileError;
use crate::lexer::tokenize;
use crate::matching::{Comparator, MatchKind, Matcher, RelOp};
use crate::message::{Index, is_field_name};
use crate::parser::{ArgValue, Argument, Command, Test, parse};
use crate::script::{
    AddrPart, BodyTransform, Cmd, DupSource, FlagOp, Period, Script, Tst, VacationCmd,
};
use crate::variables::{Modifier, Str, decode_encoded_characters, is_identifier};

/// Bounds applied when a script is uploaded or loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileLimits {
    pub max_script_bytes: usize,
    /// Blocks plus nested tests.
    pub max_nesting: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            max_script_bytes: 64 * 1024,
            max_nesting: 32,
        }
    }
}

pub fn compile(source: &str, limits: &CompileLimits) -> Result<Script, CompileError> {
    if source.len() > limits.max_script_bytes {
        return Err(CompileError::at(
            1,
            1,
            format!("script is larger than {} bytes", limits.max_script_bytes),
        ));
    }
    let tokens = tokenize(source)?;
    let ast = parse(&tokens, limits.max_nesting)?;
    let mut c = Compiler {
        caps: HashSet::new(),
    };
    let mut start = 0;
    while let Some(cmd) = ast.get(start).filter(|c| c.name == "require") {
        c.require(cmd)?;
        start += 1;
    }
    let commands = c.block(&ast[start..])?;
    let mut requires: Vec<String> = c.caps.into_iter().collect();
    requires.sort();
    Ok(Script { commands, requires })
}

struct Compiler {
    caps: HashSet<String>,
}

fn err_at(line: u32, column: u32, msg: impl Into<String>) -> CompileError {
    CompileError::at(line, column, msg)
}

fn arg_err(a: &Argument, msg: impl Into<String>) -> CompileError {
    CompileError::at(a.line, a.column, msg)
}

/// Walks one command's or test's arguments: tags first, then positional ones (RFC 5228 §2.6.2).
struct Args<'a> {
    args: &'a [Argument],
    pos: usize,
    line: u32,
    column: u32,
    owner: &'a str,
}

impl<'a> Args<'a> {
    fn new(args: &'a [Argument], line: u32, column: u32, owner: &'a str) -> Self {
        Args {
            args,
            pos: 0,
            line,
            column,
            owner,
        }
    }

    fn tag(&mut self) -> Option<(&'a str, &'a Argument)> {
        let a = self.args.get(self.pos)?;
        if let ArgValue::Tag(t) = &a.value {
            self.pos += 1;
            return Some((t.as_str(), a));
        }
        None
    }

    fn missing(&self, what: &str) -> CompileError {
        let (line, column) = self
            .args
            .get(self.pos)
            .map_or((self.line, self.column), |a| (a.line, a.column));
        err_at(line, column, format!("{}: expected {what}", self.owner))
    }

    fn string(&mut self, what: &str) -> Result<(&'a str, &'a Argument), CompileError> {
        match self.args.get(self.pos) {
            Some(
                a @ Argument {
                    value: ArgValue::String(s),
                    ..
                },
            ) => {
                self.pos += 1;
                Ok((s.as_str(), a))
            }
            _ => Err(self.missing(what)),
        }
    }

    fn strings(&mut self, what: &str) -> Result<(Vec<&'a str>, &'a Argument), CompileError> {
        match self.args.get(self.pos) {
            Some(
                a @ Argument {
                    value: ArgValue::String(s),
                    ..
                },
            ) => {
                self.pos += 1;
                Ok((vec![s.as_str()], a))
            }
            Some(
                a @ Argument {
                    value: ArgValue::List(l),
                    ..
                },
            ) => {
                self.pos += 1;
                Ok((l.iter().map(String::as_str).collect(), a))
            }
            _ => Err(self.missing(what)),
        }
    }

    fn number(&mut self, what: &str) -> Result<u64, CompileError> {
        match self.args.get(self.pos) {
            Some(Argument {
                value: ArgValue::Number(n),
                ..
            }) => {
                self.pos += 1;
                Ok(*n)
            }
            _ => Err(self.missing(what)),
        }
    }

    fn remaining(&self) -> usize {
        self.args.len() - self.pos
    }

    fn done(&self) -> Result<(), CompileError> {
        match self.args.get(self.pos) {
            None => Ok(()),
            Some(a) => Err(arg_err(a, format!("{}: unexpected argument", self.owner))),
        }
    }
}

/// Match type and comparator as they are collected from tags, to be checked together at the end.
#[derive(Default)]
struct MatchSpec<'a> {
    kind: Option<MatchKind>,
    comparator: Option<(Comparator, &'a Argument)>,
    kind_arg: Option<&'a Argument>,
}

fn unknown_tag(owner: &str, tag: &str, a: &Argument) -> CompileError {
    arg_err(a, format!("{owner}: unknown tagged argument :{tag}"))
}

impl Compiler {
    fn has(&self, cap: &str) -> bool {
        self.caps.contains(cap)
    }

    fn need(&self, cap: &str, line: u32, column: u32) -> Result<(), CompileError> {
        if self.has(cap) {
            Ok(())
        } else {
            Err(err_at(line, column, format!("missing require \"{cap}\"")))
        }
    }

    fn need_arg(&self, cap: &str, a: &Argument) -> Result<(), CompileError> {
        self.need(cap, a.line, a.column)
    }

    fn require(&mut self, cmd: &Command) -> Result<(), CompileError> {
        if cmd.block.is_some() || !cmd.tests.is_empty() {
            return Err(err_at(
                cmd.line,
                cmd.column,
                "require takes only a string list",
            ));
        }
        let mut args = Args::new(&cmd.args, cmd.line, cmd.column, "require");
        let (names, a) = args.strings("a capability string list")?;
        args.done()?;
        for n in names {
            if !capability::is_known(n) {
                return Err(arg_err(a, format!("unsupported capability \"{n}\"")));
            }
            let n = n.to_ascii_lowercase();
            if n == "spamtestplus" {
                self.caps.insert("spamtest".into());
            }
            self.caps.insert(n);
        }
        Ok(())
    }

    /// Turns a string argument into a runtime string: encoded characters are resolved now,
    /// variable references are kept for the interpreter.
    fn str(&self, raw: &str, a: &Argument) -> Result<Str, CompileError> {
        let decoded = self.literal(raw, a)?;
        if self.has("variables") {
            Str::parse(&decoded).map_err(|m| arg_err(a, m))
        } else {
            Ok(Str::literal(decoded))
        }
    }

    fn strs(&self, raw: &[&str], a: &Argument) -> Result<Vec<Str>, CompileError> {
        raw.iter().map(|s| self.str(s, a)).collect()
    }

    /// For arguments that name things (comparators, date parts…): never variable-expanded.
    fn literal(&self, raw: &str, a: &Argument) -> Result<String, CompileError> {
        if self.has("encoded-character") {
            decode_encoded_characters(raw).map_err(|m| arg_err(a, m))
        } else {
            Ok(raw.to_string())
        }
    }

    fn block(&self, cmds: &[Command]) -> Result<Vec<Cmd>, CompileError> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(c) = cmds.get(i) {
            i += 1;
            match c.name.as_str() {
                "if" => {
                    let mut branches = vec![self.conditional(c)?];
                    let mut otherwise = None;
                    while let Some(next) = cmds.get(i) {
                        match next.name.as_str() {
                            "elsif" => branches.push(self.conditional(next)?),
                            "else" => {
                                if !next.args.is_empty() || !next.tests.is_empty() {
                                    return Err(err_at(
                                        next.line,
                                        next.column,
                                        "else takes no test",
                                    ));
                                }
                                let body = next.block.as_deref().ok_or_else(|| {
                                    err_at(next.line, next.column, "else needs a block")
                                })?;
                                otherwise = Some(self.block(body)?);
                                i += 1;
                                break;
                            }
                            _ => break,
                        }
                        i += 1;
                    }
                    out.push(Cmd::If {
                        branches,
                        otherwise,
                    });
                }
                "elsif" | "else" => {
                    return Err(err_at(c.line, c.column, format!("{} without if", c.name)));
                }
                "require" => {
                    return Err(err_at(
                        c.line,
                        c.column,
                        "require must come before any other command",
                    ));
                }
                _ => out.push(self.command(c)?),
            }
        }
        Ok(out)
    }

    fn conditional(&self, c: &Command) -> Result<(Tst, Vec<Cmd>), CompileError> {
        if let Some(a) = c.args.first() {
            return Err(arg_err(a, format!("{}: unexpected argument", c.name)));
        }
        let [test] = c.tests.as_slice() else {
            return Err(err_at(
                c.line,
                c.column,
                format!("{} needs exactly one test", c.name),
            ));
        };
        let Some(body) = &c.block else {
            return Err(err_at(
                c.line,
                c.column,
                format!("{} needs a block", c.name),
            ));
        };
        Ok((self.test(test)?, self.block(body)?))
    }

    fn command(&self, c: &Command) -> Result<Cmd, CompileError> {
        let name = c.name.as_str();
        let known = matches!(
            name,
            "stop"
                | "keep"
                | "discard"
                | "redirect"
                | "fileinto"
                | "reject"
                | "ereject"
                | "vacation"
                | "set"
                | "setflag"
                | "addflag"
                | "removeflag"
                | "addheader"
                | "deleteheader"
        );
        if !known {
            return Err(err_at(
                c.line,
                c.column,
                format!("unknown command '{name}'"),
            ));
        }
        if c.block.is_some() {
            return Err(err_at(c.line, c.column, format!("{name} takes no block")));
        }
        if let Some(t) = c.tests.first() {
            return Err(err_at(t.line, t.column, format!("{name} takes no test")));
        }
        let (line, column) = (c.line, c.column);
        let mut args = Args::new(&c.args, line, column, name);
        let cmd = match name {
            "stop" => Cmd::Stop,
            "discard" => Cmd::Discard,
            "keep" => {
                let mut flags = None;
                while let Some((tag, a)) = args.tag() {
                    match tag {
                        "flags" => flags = Some(self.flags_arg(a, &mut args)?),
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                Cmd::Keep { flags }
            }
            "redirect" => {
                let mut copy = false;
                while let Some((tag, a)) = args.tag() {
                    match tag {
                        "copy" => {
                            self.need_arg("copy", a)?;
                            copy = true;
                        }
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                let (raw, a) = args.string("an address")?;
                let address = self.str(raw, a)?;
                if let Some(lit) = address.as_literal()
                    && crate::address::redirect_target(lit).is_none()
                {
                    return Err(arg_err(a, format!("redirect: invalid address \"{lit}\"")));
                }
                Cmd::Redirect { address, copy }
            }
            "fileinto" => {
                self.need("fileinto", line, column)?;
                let (mut copy, mut create, mut flags) = (false, false, None);
                while let Some((tag, a)) = args.tag() {
                    match tag {
                        "copy" => {
                            self.need_arg("copy", a)?;
                            copy = true;
                        }
                        "create" => {
                            self.need_arg("mailbox", a)?;
                            create = true;
                        }
                        "flags" => flags = Some(self.flags_arg(a, &mut args)?),
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                let (raw, a) = args.string("a mailbox name")?;
                Cmd::FileInto {
                    mailbox: self.str(raw, a)?,
                    flags,
                    copy,
                    create,
                }
            }
            "reject" | "ereject" => {
                self.need(name, line, column)?;
                if let Some((tag, a)) = args.tag() {
                    return Err(unknown_tag(name, tag, a));
                }
                let (raw, a) = args.string("a reason")?;
                Cmd::Reject {
                    reason: self.str(raw, a)?,
                    extended: name == "ereject",
                }
            }
            "vacation" => self.vacation(&mut args, line, column)?,
            "set" => {
                self.need("variables", line, column)?;
                let mut modifiers: Vec<Modifier> = Vec::new();
                while let Some((tag, a)) = args.tag() {
                    let m = Modifier::from_tag(tag).ok_or_else(|| unknown_tag(name, tag, a))?;
                    if modifiers.iter().any(|o| o.precedence() == m.precedence()) {
                        return Err(arg_err(
                            a,
                            format!("set: :{tag} conflicts with a modifier of the same precedence"),
                        ));
                    }
                    modifiers.push(m);
                }
                modifiers.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
                let (raw, a) = args.string("a variable name")?;
                let var = self.variable_name(raw, a)?;
                let (raw, a) = args.string("a value")?;
                Cmd::Set {
                    name: var,
                    value: self.str(raw, a)?,
                    modifiers,
                }
            }
            "setflag" | "addflag" | "removeflag" => {
                self.need("imap4flags", line, column)?;
                if let Some((tag, a)) = args.tag() {
                    return Err(unknown_tag(name, tag, a));
                }
                let variable = if args.remaining() == 2 {
                    let (raw, a) = args.string("a variable name")?;
                    self.need_arg("variables", a)?;
                    Some(self.variable_name(raw, a)?)
                } else {
                    None
                };
                let (raw, a) = args.strings("a list of flags")?;
                Cmd::Flags {
                    op: match name {
                        "setflag" => FlagOp::Set,
                        "addflag" => FlagOp::Add,
                        _ => FlagOp::Remove,
                    },
                    variable,
                    flags: self.strs(&raw, a)?,
                }
            }
            "addheader" => {
                self.need("editheader", line, column)?;
                let mut last = false;
                while let Some((tag, a)) = args.tag() {
                    match tag {
                        "last" => last = true,
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                let (raw, a) = args.string("a field name")?;
                let field = self.field_name(raw, a)?;
                let (raw, a) = args.string("a value")?;
                Cmd::AddHeader {
                    last,
                    name: field,
                    value: self.str(raw, a)?,
                }
            }
            "deleteheader" => {
                self.need("editheader", line, column)?;
                let mut spec = MatchSpec::default();
                let mut index = None;
                let mut last = None;
                while let Some((tag, a)) = args.tag() {
                    if self.match_tag(tag, a, &mut args, &mut spec)? {
                        continue;
                    }
                    match tag {
                        "index" => index = Some(args.number("an index number")?),
                        "last" => last = Some(a),
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                // RFC 5293 §6: deleteheader's :index/:last belong to editheader itself, so
                // they do not need `require "index"`.
                let index = self.index_value(index, last, c.line, c.column)?;
                let matcher = self.finish_match(spec)?;
                let (raw, a) = args.string("a field name")?;
                let field = self.field_name(raw, a)?;
                let patterns = if args.remaining() > 0 {
                    let (raw, a) = args.strings("value patterns")?;
                    Some(self.strs(&raw, a)?)
                } else {
                    None
                };
                Cmd::DeleteHeader {
                    index,
                    matcher,
                    name: field,
                    patterns,
                }
            }
            _ => return Err(err_at(line, column, format!("unknown command '{name}'"))),
        };
        args.done()?;
        Ok(cmd)
    }

    fn flags_arg(&self, tag: &Argument, args: &mut Args<'_>) -> Result<Vec<Str>, CompileError> {
        self.need_arg("imap4flags", tag)?;
        let (raw, a) = args.strings("a list of flags")?;
        self.strs(&raw, a)
    }

    fn variable_name(&self, raw: &str, a: &Argument) -> Result<String, CompileError> {
        let name = self.literal(raw, a)?;
        if !is_identifier(&name) {
            return Err(arg_err(a, format!("invalid variable name \"{name}\"")));
        }
        Ok(name.to_ascii_lowercase())
    }

    fn field_name(&self, raw: &str, a: &Argument) -> Result<Str, CompileError> {
        let s = self.str(raw, a)?;
        if let Some(lit) = s.as_literal()
            && !is_field_name(lit)
        {
            return Err(arg_err(a, format!("invalid header field name \"{lit}\"")));
        }
        Ok(s)
    }

    fn index(
        &self,
        index: Option<u64>,
        last: Option<&Argument>,
        line: u32,
        column: u32,
    ) -> Result<Option<Index>, CompileError> {
        if index.is_some() || last.is_some() {
            self.need("index", line, column)?;
        }
        self.index_value(index, last, line, column)
    }

    fn index_value(
        &self,
        index: Option<u64>,
        last: Option<&Argument>,
        line: u32,
        column: u32,
    ) -> Result<Option<Index>, CompileError> {
        match (index, last) {
            (None, Some(a)) => Err(arg_err(a, ":last needs :index")),
            (Some(0), _) => Err(err_at(line, column, ":index must be at least 1")),
            (Some(n), l) => Ok(Some(Index {
                n,
                last: l.is_some(),
            })),
            (None, None) => Ok(None),
        }
    }

    fn vacation(&self, args: &mut Args<'_>, line: u32, column: u32) -> Result<Cmd, CompileError> {
        self.need("vacation", line, column)?;
        let mut v = VacationCmd {
            period: Period::Default,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: Str::literal(""),
        };
        while let Some((tag, a)) = args.tag() {
            match tag {
                "days" | "seconds" => {
                    if tag == "seconds" {
                        self.need_arg("vacation-seconds", a)?;
                    }
                    if v.period != Period::Default {
                        return Err(arg_err(a, "vacation: only one of :days and :seconds"));
                    }
                    let n = args.number("a number")?;
                    v.period = if tag == "days" {
                        Period::Days(n)
                    } else {
                        Period::Seconds(n)
                    };
                }
                "subject" => {
                    let (raw, a) = args.string("a subject")?;
                    v.subject = Some(self.str(raw, a)?);
                }
                "from" => {
                    let (raw, a) = args.string("an address")?;
                    v.from = Some(self.str(raw, a)?);
                }
                "addresses" => {
                    let (raw, a) = args.strings("a list of addresses")?;
                    v.addresses = self.strs(&raw, a)?;
                }
                "handle" => {
                    let (raw, a) = args.string("a handle")?;
                    v.handle = Some(self.str(raw, a)?);
                }
                "mime" => v.mime = true,
                _ => return Err(unknown_tag("vacation", tag, a)),
            }
        }
        let (raw, a) = args.string("a reason")?;
        v.reason = self.str(raw, a)?;
        Ok(Cmd::Vacation(Box::new(v)))
    }

    /// Consumes a match-type or comparator tag; false when the tag is not one.
    fn match_tag<'a>(
        &self,
        tag: &str,
        a: &'a Argument,
        args: &mut Args<'a>,
        spec: &mut MatchSpec<'a>,
    ) -> Result<bool, CompileError> {
        let kind = match tag {
            "is" => Some(MatchKind::Is),
            "contains" => Some(MatchKind::Contains),
            "matches" => Some(MatchKind::Matches),
            "value" | "count" => {
                self.need_arg("relational", a)?;
                let (raw, op_arg) = args.string("a relational operator")?;
                let op = RelOp::from_name(&self.literal(raw, op_arg)?).ok_or_else(|| {
                    arg_err(op_arg, format!("unknown relational operator \"{raw}\""))
                })?;
                Some(if tag == "value" {
                    MatchKind::Value(op)
                } else {
                    MatchKind::Count(op)
                })
            }
            "comparator" => {
                let (raw, c_arg) = args.string("a comparator name")?;
                let name = self.literal(raw, c_arg)?;
                let c = Comparator::from_name(&name)
                    .ok_or_else(|| arg_err(c_arg, format!("unknown comparator \"{name}\"")))?;
                if c == Comparator::AsciiNumeric {
                    self.need_arg("comparator-i;ascii-numeric", c_arg)?;
                }
                if spec.comparator.is_some() {
                    return Err(arg_err(a, "only one comparator is allowed"));
                }
                spec.comparator = Some((c, c_arg));
                None
            }
            _ => return Ok(false),
        };
        if let Some(k) = kind {
            if spec.kind.is_some() {
                return Err(arg_err(a, "only one match type is allowed"));
            }
            spec.kind = Some(k);
            spec.kind_arg = Some(a);
        }
        Ok(true)
    }

    fn finish_match(&self, spec: MatchSpec<'_>) -> Result<Matcher, CompileError> {
        let kind = spec.kind.unwrap_or(MatchKind::Is);
        let comparator = spec.comparator.map_or(Comparator::AsciiCasemap, |(c, _)| c);
        if comparator == Comparator::AsciiNumeric
            && matches!(kind, MatchKind::Contains | MatchKind::Matches)
            && let Some(a) = spec.kind_arg
        {
            return Err(arg_err(
                a,
                "comparator i;ascii-numeric supports only :is, :value and :count",
            ));
        }
        Ok(Matcher { comparator, kind })
    }

    fn address_part(&self, tag: &str, a: &Argument) -> Result<Option<AddrPart>, CompileError> {
        Ok(Some(match tag {
            "all" => AddrPart::All,
            "localpart" => AddrPart::Local,
            "domain" => AddrPart::Domain,
            "user" | "detail" => {
                self.need_arg("subaddress", a)?;
                if tag == "user" {
                    AddrPart::User
                } else {
                    AddrPart::Detail
                }
            }
            _ => return Ok(None),
        }))
    }

    fn test(&self, t: &Test) -> Result<Tst, CompileError> {
        let name = t.name.as_str();
        let (line, column) = (t.line, t.column);
        match name {
            "not" => {
                if let Some(a) = t.args.first() {
                    return Err(arg_err(a, "not: unexpected argument"));
                }
                return match t.tests.as_slice() {
                    [inner] if !t.test_list => Ok(Tst::Not(Box::new(self.test(inner)?))),
                    _ => Err(err_at(line, column, "not needs exactly one test")),
                };
            }
            "allof" | "anyof" => {
                if let Some(a) = t.args.first() {
                    return Err(arg_err(a, format!("{name}: unexpected argument")));
                }
                if !t.test_list {
                    return Err(err_at(line, column, format!("{name} needs a test list")));
                }
                let inner = t
                    .tests
                    .iter()
                    .map(|x| self.test(x))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if name == "allof" {
                    Tst::AllOf(inner)
                } else {
                    Tst::AnyOf(inner)
                });
            }
            _ => {}
        }
        if let Some(inner) = t.tests.first() {
            return Err(err_at(
                inner.line,
                inner.column,
                format!("{name} takes no nested test"),
            ));
        }
        let mut args = Args::new(&t.args, line, column, name);
        let mut spec = MatchSpec::default();
        if matches!(name, "true" | "false" | "exists" | "mailboxexists")
            && let Some((tag, a)) = args.tag()
        {
            return Err(unknown_tag(name, tag, a));
        }
        let tst = match name {
            "true" => Tst::True,
            "false" => Tst::False,
            "exists" => {
                let (raw, a) = args.strings("header names")?;
                Tst::Exists(self.strs(&raw, a)?)
            }
            "size" => {
                let mut over = None;
                while let Some((tag, a)) = args.tag() {
                    let o = match tag {
                        "over" => true,
                        "under" => false,
                        _ => return Err(unknown_tag(name, tag, a)),
                    };
                    if over.is_some() {
                        return Err(arg_err(a, "size: only one of :over and :under"));
                    }
                    over = Some(o);
                }
                let over = over.ok_or_else(|| args.missing(":over or :under"))?;
                Tst::Size {
                    over,
                    limit: args.number("a size")?,
                }
            }
            "header" | "address" | "envelope" => {
                if name == "envelope" {
                    self.need("envelope", line, column)?;
                }
                let mut part = None;
                let (mut index, mut last) = (None, None);
                while let Some((tag, a)) = args.tag() {
                    if self.match_tag(tag, a, &mut args, &mut spec)? {
                        continue;
                    }
                    if name != "header"
                        && let Some(p) = self.address_part(tag, a)?
                    {
                        if part.is_some() {
                            return Err(arg_err(a, "only one address part is allowed"));
                        }
                        part = Some(p);
                        continue;
                    }
                    match tag {
                        "index" if name != "envelope" => {
                            index = Some(args.number("an index number")?);
                        }
                        "last" if name != "envelope" => last = Some(a),
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                let index = self.index(index, last, line, column)?;
                let matcher = self.finish_match(spec)?;
                let (raw, a) = args.strings("header names")?;
                let names = self.strs(&raw, a)?;
                if name == "envelope" {
                    for n in names.iter().filter_map(Str::as_literal) {
                        if !["from", "to", "auth"]
                            .iter()
                            .any(|e| e.eq_ignore_ascii_case(n))
                        {
                            return Err(arg_err(a, format!("envelope: unsupported part \"{n}\"")));
                        }
                    }
                }
                let (raw, a) = args.strings("a key list")?;
                let keys = self.strs(&raw, a)?;
                let part = part.unwrap_or(AddrPart::All);
                match name {
                    "header" => Tst::Header {
                        matcher,
                        names,
                        keys,
                        index,
                    },
                    "address" => Tst::Address {
                        matcher,
                        part,
                        names,
                        keys,
                        index,
                    },
                    _ => Tst::Envelope {
                        matcher,
                        part,
                        names,
                        keys,
                    },
                }
            }
            "body" => {
                self.need("body", line, column)?;
                let mut transform = None;
                while let Some((tag, a)) = args.tag() {
                    if self.match_tag(tag, a, &mut args, &mut spec)? {
                        continue;
                    }
                    let tr = match tag {
                        "raw" => BodyTransform::Raw,
                        "text" => BodyTransform::Text,
                        "content" => {
                            let (raw, ca) = args.strings("content types")?;
                            BodyTransform::Content(self.strs(&raw, ca)?)
                        }
                        _ => return Err(unknown_tag(name, tag, a)),
                    };
                    if transform.is_some() {
                        return Err(arg_err(a, "body: only one transform is allowed"));
                    }
                    transform = Some(tr);
                }
                let matcher = self.finish_match(spec)?;
                let (raw, a) = args.strings("a key list")?;
                Tst::Body {
                    matcher,
                    transform: transform.unwrap_or(BodyTransform::Text),
                    keys: self.strs(&raw, a)?,
                }
            }
            "string" => {
                self.need("variables", line, column)?;
                self.only_match_tags(name, &mut args, &mut spec)?;
                let matcher = self.finish_match(spec)?;
                let (raw, a) = args.strings("source strings")?;
                let sources = self.strs(&raw, a)?;
                let (raw, a) = args.strings("a key list")?;
                Tst::String {
                    matcher,
                    sources,
                    keys: self.strs(&raw, a)?,
                }
            }
            "hasflag" => {
                self.need("imap4flags", line, column)?;
                self.only_match_tags(name, &mut args, &mut spec)?;
                let matcher = self.finish_match(spec)?;
                let variables = if args.remaining() == 2 {
                    let (raw, a) = args.strings("variable names")?;
                    self.need_arg("variables", a)?;
                    Some(
                        raw.iter()
                            .map(|v| self.variable_name(v, a))
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                } else {
                    None
                };
                let (raw, a) = args.strings("a list of flags")?;
                Tst::HasFlag {
                    matcher,
                    variables,
                    keys: self.strs(&raw, a)?,
                }
            }
            "date" | "currentdate" => {
                self.need("date", line, column)?;
                let mut zone = None;
                let (mut index, mut last) = (None, None);
                while let Some((tag, a)) = args.tag() {
                    if self.match_tag(tag, a, &mut args, &mut spec)? {
                        continue;
                    }
                    match tag {
                        "zone" | "originalzone" => {
                            if zone.is_some() {
                                return Err(arg_err(a, "only one of :zone and :originalzone"));
                            }
                            if tag == "zone" {
                                let (raw, za) = args.string("a time zone offset")?;
                                let z = self.literal(raw, za)?;
                                zone = Some(Zone::parse_offset(&z).ok_or_else(|| {
                                    arg_err(za, format!("invalid time zone \"{z}\""))
                                })?);
                            } else if name == "date" {
                                zone = Some(Zone::Original);
                            } else {
                                return Err(unknown_tag(name, tag, a));
                            }
                        }
                        "index" if name == "date" => {
                            index = Some(args.number("an index number")?);
                        }
                        "last" if name == "date" => last = Some(a),
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                let index = self.index(index, last, line, column)?;
                let matcher = self.finish_match(spec)?;
                let header = if name == "date" {
                    let (raw, a) = args.string("a header name")?;
                    Some(self.str(raw, a)?)
                } else {
                    None
                };
                let (raw, a) = args.string("a date part")?;
                let p = self.literal(raw, a)?;
                let part = DatePart::from_name(&p)
                    .ok_or_else(|| arg_err(a, format!("unknown date part \"{p}\"")))?;
                let (raw, a) = args.strings("a key list")?;
                let keys = self.strs(&raw, a)?;
                let zone = zone.unwrap_or(Zone::Local);
                match header {
                    Some(header) => Tst::Date {
                        matcher,
                        zone,
                        header,
                        part,
                        keys,
                        index,
                    },
                    None => Tst::CurrentDate {
                        matcher,
                        zone,
                        part,
                        keys,
                    },
                }
            }
            "mailboxexists" => {
                self.need("mailbox", line, column)?;
                let (raw, a) = args.strings("mailbox names")?;
                Tst::MailboxExists(self.strs(&raw, a)?)
            }
            "duplicate" => {
                self.need("duplicate", line, column)?;
                let mut handle = Str::literal("");
                let mut source = DupSource::MessageId;
                let mut seconds = 7 * 24 * 3600;
                let mut last = false;
                while let Some((tag, a)) = args.tag() {
                    match tag {
                        "handle" => {
                            let (raw, ha) = args.string("a handle")?;
                            handle = self.str(raw, ha)?;
                        }
                        "header" | "uniqueid" => {
                            if source != DupSource::MessageId {
                                return Err(arg_err(a, "only one of :header and :uniqueid"));
                            }
                            let (raw, sa) = args.string("a string")?;
                            let s = self.str(raw, sa)?;
                            source = if tag == "header" {
                                DupSource::Header(s)
                            } else {
                                DupSource::UniqueId(s)
                            };
                        }
                        "seconds" => seconds = args.number("a number of seconds")?,
                        "last" => last = true,
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                Tst::Duplicate {
                    handle,
                    source,
                    seconds,
                    last,
                }
            }
            "spamtest" | "virustest" => {
                self.need(name, line, column)?;
                let mut percent = false;
                while let Some((tag, a)) = args.tag() {
                    if self.match_tag(tag, a, &mut args, &mut spec)? {
                        continue;
                    }
                    match tag {
                        "percent" if name == "spamtest" => {
                            self.need_arg("spamtestplus", a)?;
                            percent = true;
                        }
                        _ => return Err(unknown_tag(name, tag, a)),
                    }
                }
                let matcher = self.finish_match(spec)?;
                let (raw, a) = args.string("a value")?;
                let key = self.str(raw, a)?;
                if name == "spamtest" {
                    Tst::SpamTest {
                        matcher,
                        percent,
                        key,
                    }
                } else {
                    Tst::VirusTest { matcher, key }
                }
            }
            _ => return Err(err_at(line, column, format!("unknown test '{name}'"))),
        };
        args.done()?;
        Ok(tst)
    }

    fn only_match_tags<'a>(
        &self,
        owner: &str,
        args: &mut Args<'a>,
        spec: &mut MatchSpec<'a>,
    ) -> Result<(), CompileError> {
        while let Some((tag, a)) = args.tag() {
            if !self.match_tag(tag, a, args, spec)? {
                return Err(unknown_tag(owner, tag, a));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> CompileError {
        compile(src, &CompileLimits::default()).unwrap_err()
    }

    fn ok(src: &str) {
        if let Err(e) = compile(src, &CompileLimits::default()) {
            panic!("{src}: {e}");
        }
    }

    #[test]
    fn require_rules() {
        let e = err("fileinto \"a\";");
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(
            e.to_string(),
            "line 1, column 1: missing require \"fileinto\""
        );
        let e = err("require \"nosuch\";");
        assert!(e.message.contains("unsupported capability"));
        let e = err("keep;\nrequire \"fileinto\";");
        assert_eq!((e.line, e.column), (2, 1));
        ok("require [\"fileinto\", \"COPY\"]; fileinto :copy \"a\";");
        let e = err("require \"fileinto\"; fileinto :copy \"a\";");
        assert_eq!(e.message, "missing require \"copy\"");
        assert_eq!(e.column, 30);
    }

    #[test]
    fn structure_rules() {
        let e = err("keep;\nelsif true { keep; }");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 1, "elsif without if")
        );
        assert!(err("else { keep; }").message.contains("else without if"));
        assert!(err("if true keep;").message.contains("needs a block"));
        assert!(err("if true;").message.contains("needs a block"));
        assert!(err("keep { }").message.contains("no block"));
        assert!(
            err("if frobnicate { }")
                .message
                .contains("unknown test 'frobnicate'")
        );
        assert!(err("frob;").message.contains("unknown command"));
        assert!(err("if not (true, false) {}").message.contains("not needs"));
        assert!(err("if allof true {}").message.contains("test list"));
        ok("if true { keep; } elsif false { discard; } else { stop; }");
    }

    #[test]
    fn argument_rules() {
        let e = err("if header :is :contains \"a\" \"b\" {}");
        assert_eq!(
            (e.column, e.message.as_str()),
            (15, "only one match type is allowed")
        );
        assert!(
            err("if header :comparator \"i;nope\" \"a\" \"b\" {}")
                .message
                .contains("unknown comparator")
        );
        assert!(
            err("if header :comparator \"i;ascii-numeric\" \"a\" \"b\" {}")
                .message
                .contains("comparator-i;ascii-numeric")
        );
        let e = err(
            "require \"comparator-i;ascii-numeric\";\nif header :contains :comparator \"i;ascii-numeric\" \"a\" \"b\" {}",
        );
        assert_eq!((e.line, e.column), (2, 11));
        assert!(
            err("if header :value \"gt\" \"a\" \"b\" {}")
                .message
                .contains("relational")
        );
        assert!(
            err("require \"relational\"; if header :value \"xx\" \"a\" \"b\" {}")
                .message
                .contains("operator")
        );
        assert!(err("if size 10 {}").message.contains(":over or :under"));
        assert!(err("if header \"a\" {}").message.contains("key list"));
        assert!(
            err("if header \"a\" \"b\" \"c\" {}")
                .message
                .contains("unexpected argument")
        );
        assert!(
            err("redirect \"not an address\";")
                .message
                .contains("invalid address")
        );
        assert!(
            err("if exists :foo \"a\" {}")
                .message
                .contains("unknown tagged argument")
        );
        assert!(
            err("require \"variables\"; set \"1a\" \"x\";")
                .message
                .contains("variable name")
        );
        assert!(
            err("require \"variables\"; set :lower :upper \"a\" \"x\";")
                .message
                .contains("precedence")
        );
        assert!(
            err("require \"variables\"; set \"a\" \"${ns.x}\";")
                .message
                .contains("namespace")
        );
        assert!(
            err("require \"date\"; if date \"date\" \"yearz\" \"1\" {}")
                .message
                .contains("date part")
        );
        assert!(
            err("require \"date\"; if date :zone \"0100\" \"date\" \"year\" \"1\" {}")
                .message
                .contains("time zone")
        );
        assert!(
            err("require [\"index\"]; if header :last \"a\" \"b\" {}")
                .message
                .contains(":last needs :index")
        );
        assert!(
            err("require \"editheader\"; addheader \"bad name\" \"v\";")
                .message
                .contains("field name")
        );
        assert!(
            err("require \"envelope\"; if envelope \"bogus\" \"x\" {}")
                .message
                .contains("unsupported part")
        );
        assert!(
            err("require \"spamtest\"; if spamtest :percent \"5\" {}")
                .message
                .contains("spamtestplus")
        );
        assert!(
            err("require [\"encoded-character\", \"fileinto\"]; fileinto \"${hex:ff}\";")
                .message
                .contains("UTF-8")
        );
    }

    #[test]
    fn limits() {
        let big = "keep;".repeat(20_000);
        assert!(err(&big).message.contains("larger"));
    }

    #[test]
    fn rfc_examples_compile() {
        ok(
            r#"require ["fileinto", "reject", "envelope", "variables", "vacation", "relational",
            "comparator-i;ascii-numeric", "subaddress", "imap4flags", "date", "index", "editheader",
            "mailbox", "body", "duplicate", "spamtestplus", "virustest", "copy", "ereject", "vacation-seconds"];
            if header :contains "from" "coyote" { discard; }
            elsif header :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] { fileinto :flags "\\Seen" "many"; }
            elsif address :detail :is "to" "sieve" { fileinto :create "lists.sieve"; }
            elsif date :originalzone :index 1 :last "received" "year" "2020" { addflag "\\Flagged"; }
            elsif body :content "text" :contains "money" { ereject "no"; }
            elsif duplicate :header "x-id" :seconds 60 :last { discard; }
            elsif spamtest :percent :value "ge" :comparator "i;ascii-numeric" "90" { deleteheader :index 1 "x-spam"; }
            elsif currentdate :zone "+0000" "weekday" "0" { vacation :seconds 600 :subject "away" "gone"; }
            if virustest :value "ge" :comparator "i;ascii-numeric" "4" { redirect :copy "a@b.c"; }
            if mailboxexists "x" { set :upperfirst "a" "${1}"; }
            if string :matches "${a}" "*" { setflag "flags" ["\\Seen"]; }
            if hasflag "flags" "\\Seen" { keep; }"#,
        );
    }
}
