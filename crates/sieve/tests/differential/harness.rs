//! Runs one (script, message) pair through Pigeonhole's `sieve-test` and through Wharf, and
//! turns both results into the same normalised action list.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, FixedOffset};
use wharf_sieve::{Action, CompileLimits, Context, Envelope, RunLimits, SpamScore, compile, run};

use super::cases::Case;

/// The Pigeonhole configuration shared by every pair: limits aligned with Wharf's
/// `RunLimits::default()`, the extensions that are off by default switched on, and spam/virus
/// scores read from `X-Spam-Score` (0..10) and `X-Virus-Score` (0..5).
pub fn write_config(root: &Path, as_root: bool) -> PathBuf {
    let uid = if as_root {
        // Dovecot refuses to access mail as root; `nobody` owns nothing, so every file the
        // run touches is made world-writable.
        "mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
    } else {
        ""
    };
    let conf = format!(
        "{uid}log_path = /dev/stderr\n\
         mail_location = maildir:~/Maildir\n\
         plugin {{\n\
         \x20 sieve_extensions = +editheader +vacation-seconds +spamtest +spamtestplus +virustest +duplicate\n\
         \x20 sieve_max_actions = 64\n\
         \x20 sieve_max_redirects = 4\n\
         \x20 sieve_vacation_min_period = 1h\n\
         \x20 sieve_vacation_max_period = 30d\n\
         \x20 sieve_vacation_default_period = 7d\n\
         \x20 sieve_spamtest_status_type = score\n\
         \x20 sieve_spamtest_status_header = X-Spam-Score: ([0-9]+)\n\
         \x20 sieve_spamtest_max_value = 10\n\
         \x20 sieve_virustest_status_type = score\n\
         \x20 sieve_virustest_status_header = X-Virus-Score: ([0-9]+)\n\
         \x20 sieve_virustest_max_value = 5\n\
         }}\n"
    );
    let path = root.join("dovecot.conf");
    fs::write(&path, conf).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn open_dir(p: &Path) {
    fs::create_dir_all(p).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
}

fn make_mailbox(home: &Path, name: &str) {
    let base = if name.eq_ignore_ascii_case("INBOX") {
        home.join("Maildir")
    } else {
        home.join("Maildir").join(format!(".{name}"))
    };
    for sub in ["cur", "new", "tmp"] {
        open_dir(&base.join(sub));
    }
    open_dir(&home.join("Maildir"));
    open_dir(&base);
}

/// CRLF line ends, as delivered.
pub fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// Sorted action lines, or `compile-error`.
    pub actions: Vec<String>,
}

impl std::fmt::Display for Normalised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.actions.join(" | "))
    }
}

fn flags_suffix(flags: &[String]) -> String {
    let set: BTreeSet<String> = flags
        .iter()
        .flat_map(|f| f.split_whitespace())
        .map(|f| f.to_ascii_lowercase())
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!(" flags=[{}]", set.into_iter().collect::<Vec<_>>().join(","))
    }
}

fn finish(mut lines: Vec<String>) -> Vec<String> {
    lines.retain(|l| l != "discard");
    lines.sort();
    lines.dedup();
    if lines.is_empty() {
        lines.push("(nothing)".into());
    }
    lines
}

#[derive(Default)]
struct PhAction {
    kind: String,
    arg: String,
    flags: Vec<String>,
    create: bool,
    copy: bool,
    seconds: Option<String>,
}

/// What Pigeonhole printed, before vacation details are filled in from the executed run.
pub struct PhDry {
    pub actions: Vec<String>,
    pub folders: Vec<String>,
    pub vacation_seconds: Option<String>,
    pub failed: bool,
    pub compile_error: bool,
    pub raw: String,
}

fn parse_dry(stdout: &str, stderr: &str, status_ok: bool) -> PhDry {
    let raw = format!("{stdout}\n--- stderr ---\n{stderr}");
    if stderr.contains("failed to compile") || (!status_ok && !stderr.contains("final result")) {
        return PhDry {
            actions: vec!["compile-error".into()],
            folders: vec![],
            vacation_seconds: None,
            failed: false,
            compile_error: true,
            raw,
        };
    }
    if stderr.contains("final result: failed") {
        return PhDry {
            actions: vec!["keep".into()],
            folders: vec![],
            vacation_seconds: None,
            failed: true,
            compile_error: false,
            raw,
        };
    }
    let mut acts: Vec<PhAction> = Vec::new();
    let mut in_message = false;
    for line in stdout.lines() {
        if in_message {
            if line == "END MESSAGE" {
                in_message = false;
            }
            continue;
        }
        if line == "START MESSAGE" {
            in_message = true;
            continue;
        }
        let t = line.trim();
        if let Some(rest) = line.strip_prefix(" * ") {
            let mut a = PhAction::default();
            if let Some(f) = rest.strip_prefix("store message in folder: ") {
                a.kind = "store".into();
                a.arg = f.to_string();
            } else if let Some(r) = rest.strip_prefix("redirect message to: ") {
                a.kind = "redirect".into();
                a.arg = r.trim_start_matches('<').trim_end_matches('>').to_string();
            } else if let Some(r) = rest.strip_prefix("reject message with reason: ") {
                a.kind = "reject".into();
                a.arg = r.to_string();
            } else if rest.starts_with("send vacation message") {
                a.kind = "vacation".into();
            } else if rest.starts_with("track ") && rest.contains("duplicate") {
                a.kind = "track duplicate".into();
            } else if rest == "discard" {
                a.kind = "discard".into();
            } else {
                a.kind = format!("unknown: {rest}");
            }
            acts.push(a);
        } else if let Some(m) = t.strip_prefix("+ ") {
            let Some(a) = acts.last_mut() else { continue };
            if let Some(f) = m.strip_prefix("add IMAP flags: ") {
                a.flags.push(f.to_string());
            } else if m.starts_with("create mailbox") {
                a.create = true;
            } else if m.starts_with("preserve implicit keep") {
                a.copy = true;
            }
        } else if let Some(m) = t.strip_prefix("=> ") {
            let Some(a) = acts.last_mut() else { continue };
            if let Some((k, v)) = m.split_once(':')
                && k.trim() == "seconds"
            {
                a.seconds = Some(v.trim().to_string());
            }
        }
    }
    let mut lines = Vec::new();
    let mut folders = Vec::new();
    let mut vacation_seconds = None;
    for a in acts {
        match a.kind.as_str() {
            "store" if a.arg.eq_ignore_ascii_case("INBOX") => {
                lines.push(format!("keep{}", flags_suffix(&a.flags)))
            }
            "store" => {
                folders.push(a.arg.clone());
                lines.push(format!(
                    "fileinto {:?}{}{}",
                    a.arg,
                    flags_suffix(&a.flags),
                    if a.create { " :create" } else { "" }
                ));
            }
            "redirect" => lines.push(format!(
                "redirect {:?}{}",
                a.arg,
                if a.copy { " :copy" } else { "" }
            )),
            "reject" => lines.push(format!("reject {:?}", a.arg)),
            "vacation" => vacation_seconds = a.seconds.clone().or(Some("?".into())),
            "discard" => lines.push("discard".into()),
            // Pigeonhole's bookkeeping for the duplicate test; Wharf's is
            // `Outcome::duplicates_to_record`.
            "track duplicate" => lines.push("track duplicate".into()),
            other => lines.push(other.to_string()),
        }
    }
    PhDry {
        actions: lines,
        folders,
        vacation_seconds,
        failed: false,
        compile_error: false,
        raw,
    }
}

/// The vacation reply in the executed run's output: (to, subject, from, body).
fn parse_vacation_sent(stdout: &str) -> Option<(String, String, String, String)> {
    let lines: Vec<&str> = stdout.lines().collect();
    let pos = lines
        .iter()
        .position(|l| l.starts_with("Auto-Submitted: auto-replied (vacation)"))?;
    let mut start = pos;
    while start > 0 && !lines[start - 1].is_empty() {
        start -= 1;
    }
    let mut end = pos;
    while end < lines.len() && !lines[end].is_empty() {
        end += 1;
    }
    let header = |name: &str| {
        lines[start..end]
            .iter()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let mut body = Vec::new();
    for l in &lines[(end + 1).min(lines.len())..] {
        if l.starts_with("RECIPIENT:") || l.starts_with("START MESSAGE") {
            break;
        }
        body.push(*l);
    }
    while body.last().is_some_and(|l| l.is_empty()) {
        body.pop();
    }
    let to = header("To");
    Some((
        to.trim_start_matches('<').trim_end_matches('>').to_string(),
        decode_words(&header("Subject")),
        header("From"),
        body.join("\n"),
    ))
}

fn vacation_line(to: &str, subject: &str, seconds: &str) -> String {
    format!("vacation to={to:?} subject={subject:?} seconds={seconds}")
}

/// Header block of a message, LF line ends, for comparing editheader results.
fn header_block(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or("").to_string();
    head.lines()
        .filter(|l| !l.starts_with("X-Sieve:"))
        .map(decode_words)
        .collect::<Vec<_>>()
        .join("\n")
}

/// RFC 2047 encoded words (UTF-8, B or Q) decoded, so that the encoder's choice does not count.
fn decode_words(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let parts: Vec<&str> = word[2..].splitn(3, '?').collect();
        let decoded = (parts.len() == 3)
            .then(|| parts[2].split_once("?="))
            .flatten()
            .and_then(|(t, after)| {
                let bytes = match parts[1] {
                    "b" | "B" => base64(t)?,
                    "q" | "Q" => quoted(t)?,
                    _ => return None,
                };
                Some((String::from_utf8_lossy(&bytes).into_owned(), after))
            });
        match decoded {
            Some((d, after)) => {
                out.push_str(before);
                out.push_str(&d);
                rest = after;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &word[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn base64(t: &str) -> Option<Vec<u8>> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in t.bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | A.iter().position(|&a| a == c)? as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

fn quoted(t: &str) -> Option<Vec<u8>> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' => {
                out.push(u8::from_str_radix(t.get(i + 1..i + 3)?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

fn stored_messages(home: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let maildir = home.join("Maildir");
    let mut dirs = vec![maildir.clone()];
    if let Ok(rd) = fs::read_dir(&maildir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                dirs.push(e.path());
            }
        }
    }
    dirs.sort();
    for d in dirs {
        for sub in ["new", "cur"] {
            if let Ok(rd) = fs::read_dir(d.join(sub)) {
                for e in rd.flatten() {
                    out.push(fs::read(e.path()).unwrap());
                }
            }
        }
    }
    out
}

pub struct Pair {
    pub pigeonhole: Normalised,
    pub wharf: Normalised,
    pub pigeonhole_raw: String,
}

pub struct Env<'a> {
    pub sieve_test: &'a Path,
    pub config: &'a Path,
    pub root: &'a Path,
    pub now: DateTime<FixedOffset>,
}

fn sieve_test(env: &Env<'_>, case: &Case, home: &Path, execute: bool) -> (String, String, bool) {
    let mut cmd = Command::new(env.sieve_test);
    cmd.arg("-c").arg(env.config).arg("-C");
    if execute {
        cmd.arg("-e");
    }
    cmd.arg("-f")
        .arg(case.from)
        .arg("-a")
        .arg(case.rcpt)
        .arg("-r")
        .arg(case.rcpt)
        .arg(home.join("script.sieve"))
        .arg(home.join("message.eml"))
        .env("HOME", home)
        .env("TZ", "UTC")
        .current_dir(home);
    let out = cmd.output().expect("running sieve-test");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

pub fn run_pair(env: &Env<'_>, index: usize, case: &Case) -> Pair {
    let message = crlf(case.message);
    let home = env.root.join(format!("pair-{index:03}"));
    open_dir(&home);
    fs::write(home.join("script.sieve"), &case.script).unwrap();
    fs::write(home.join("message.eml"), &message).unwrap();
    for f in ["script.sieve", "message.eml"] {
        fs::set_permissions(home.join(f), fs::Permissions::from_mode(0o666)).unwrap();
    }
    make_mailbox(&home, "INBOX");
    for m in case.existing {
        make_mailbox(&home, m);
    }

    // --- Pigeonhole, dry run: the action list.
    let (stdout, stderr, ok) = sieve_test(env, case, &home, false);
    let dry = parse_dry(&stdout, &stderr, ok);
    let mut ph_lines = dry.actions.clone();
    let mut raw = dry.raw.clone();

    let edits = case.script.contains("addheader") || case.script.contains("deleteheader");
    let mut ph_headers = None;
    if !dry.compile_error && !dry.failed && (dry.vacation_seconds.is_some() || edits) {
        // --- Pigeonhole, executed: whether the vacation reply is really sent (RFC 5230 §4.5
        // checks happen only here) and the stored, edited message.
        for f in &dry.folders {
            make_mailbox(&home, f);
        }
        let (x_out, x_err, _) = sieve_test(env, case, &home, true);
        raw.push_str(&format!(
            "\n=== executed ===\n{x_out}\n--- stderr ---\n{x_err}"
        ));
        if let Some(seconds) = &dry.vacation_seconds
            && let Some((to, subject, _from, _body)) = parse_vacation_sent(&x_out)
        {
            ph_lines.push(vacation_line(&to, &subject, seconds));
        }
        if edits && let Some(m) = stored_messages(&home).first() {
            ph_headers = Some(header_block(m));
        }
    }

    // --- Wharf.
    let wharf_lines = match compile(&case.script, &CompileLimits::default()) {
        Err(_) => vec!["compile-error".to_string()],
        Ok(script) => {
            let envelope = Envelope {
                from: case.from.to_string(),
                to: case.rcpt.to_string(),
                auth: None,
            };
            let mut mailboxes: HashSet<String> =
                case.existing.iter().map(|s| s.to_string()).collect();
            mailboxes.extend(dry.folders.iter().cloned());
            // Every string literal too, so that Wharf's "unknown mailbox becomes keep" rule
            // never hides which folder it chose.
            // ("Nope" is the name the mailbox tests use for one that does not exist.)
            mailboxes.extend(
                case.script
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .filter(|s| *s != "Nope")
                    .map(str::to_string),
            );
            let seen = HashSet::new();
            let user_addresses = vec![case.rcpt.to_string()];
            let ctx = Context {
                envelope: &envelope,
                mailboxes: &mailboxes,
                seen_duplicates: &seen,
                spam_score: case.spam.map(|s| SpamScore {
                    value: s.max(1),
                    percent: s * 10,
                }),
                virus_score: case.virus.map(|v| v.max(1)),
                now: env.now,
                user_addresses: &user_addresses,
            };
            let out = run(&[&script], message.as_bytes(), &ctx, &RunLimits::default());
            let mut lines = Vec::new();
            for a in &out.actions {
                lines.push(match a {
                    Action::Keep { flags } => format!("keep{}", flags_suffix(flags)),
                    Action::FileInto {
                        mailbox,
                        flags,
                        create,
                    } => format!(
                        "fileinto {mailbox:?}{}{}",
                        flags_suffix(flags),
                        if *create { " :create" } else { "" }
                    ),
                    Action::Redirect { address, copy } => {
                        format!("redirect {address:?}{}", if *copy { " :copy" } else { "" })
                    }
                    Action::Reject { reason, extended } => {
                        // Pigeonhole prints control characters as '?'.
                        let shown: String = reason
                            .chars()
                            .map(|c| if c.is_control() { '?' } else { c })
                            .collect();
                        format!("{} {shown:?}", if *extended { "ereject" } else { "reject" })
                    }
                    Action::Vacation(v) => {
                        vacation_line(&v.to, &v.subject, &v.period_seconds.to_string())
                    }
                    Action::Discard => "discard".to_string(),
                });
            }
            if let Some(err) = &out.error {
                raw.push_str(&format!("\n=== wharf error: {err}"));
            }
            if !out.duplicates_to_record.is_empty() {
                lines.push("track duplicate".into());
            }
            if ph_headers.is_some() {
                let stored = out.edited_message.as_deref().unwrap_or(message.as_bytes());
                lines.push(format!("headers:\n{}", header_block(stored)));
            }
            lines
        }
    };
    if let Some(h) = ph_headers {
        ph_lines.push(format!("headers:\n{h}"));
    }
    let _ = fs::remove_dir_all(&home);
    Pair {
        pigeonhole: Normalised {
            actions: finish(ph_lines),
        },
        wharf: Normalised {
            actions: finish(wharf_lines),
        },
        pigeonhole_raw: raw,
    }
}
