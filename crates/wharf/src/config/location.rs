//! Where a configuration problem is: `ConfigError` (one line naming file, line, column and key)
//! and the mapping between byte offsets in the TOML text and dotted keys such as `listener[1].port`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration refused at load time. Its text is one line: `file:line:column: key `k`: problem`.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        // serde messages may span lines; the CLI contract is one line.
        write!(f, "{}", self.message.replace('\n', " ").trim())
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn located(
    path: &Path,
    text: &str,
    span: Option<Range<usize>>,
    key: Option<String>,
    message: String,
) -> ConfigError {
    let (line, column) = match span {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ConfigError {
        file: path.to_path_buf(),
        line,
        column,
        key,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Path segments of a key, e.g. `listener[1].port`.
enum Seg {
    Key(String),
    Index(usize),
}

fn join(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn contains(span: &Option<Range<usize>>, offset: usize) -> bool {
    span.as_ref()
        .is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The dotted key whose name or value covers `offset` in the document.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut segs = Vec::new();
    if find_in_table(doc.as_table(), offset, &mut segs) {
        Some(join(&segs))
    } else {
        None
    }
}

fn find_in_table(table: &toml_edit::Table, offset: usize, segs: &mut Vec<Seg>) -> bool {
    for (k, item) in table.iter() {
        segs.push(Seg::Key(k.to_string()));
        let key_span = table.key(k).and_then(toml_edit::Key::span);
        if contains(&key_span, offset) || find_in_item(item, offset, segs) {
            return true;
        }
        segs.pop();
    }
    false
}

fn find_in_item(item: &toml_edit::Item, offset: usize, segs: &mut Vec<Seg>) -> bool {
    match item {
        toml_edit::Item::Table(t) => find_in_table(t, offset, segs) || contains(&t.span(), offset),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                segs.push(Seg::Index(i));
                if find_in_table(t, offset, segs) || contains(&t.span(), offset) {
                    return true;
                }
                segs.pop();
            }
            false
        }
        toml_edit::Item::Value(v) => find_in_value(v, offset, segs),
        toml_edit::Item::None => false,
    }
}

fn find_in_value(v: &toml_edit::Value, offset: usize, segs: &mut Vec<Seg>) -> bool {
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, val) in t.iter() {
                segs.push(Seg::Key(k.to_string()));
                let key_span = t.key(k).and_then(toml_edit::Key::span);
                if contains(&key_span, offset) || find_in_value(val, offset, segs) {
                    return true;
                }
                segs.pop();
            }
            contains(&t.span(), offset)
        }
        toml_edit::Value::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                segs.push(Seg::Index(i));
                if find_in_value(val, offset, segs) {
                    return true;
                }
                segs.pop();
            }
            contains(&a.span(), offset)
        }
        other => contains(&other.span(), offset),
    }
}

pub(super) fn has_key(text: &str, path: &[&str]) -> bool {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return false;
    };
    let mut item = doc.as_item();
    for part in path {
        match item.get(part) {
            Some(next) => item = next,
            None => return false,
        }
    }
    true
}

/// Where a dotted key (as produced by `join`) is written, for errors found after deserialising.
/// A key left to its default points at the table that would hold it.
pub(super) fn span_of(text: &str, path: &str) -> Option<Range<usize>> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut span = None;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((key, item)) = table.get_key_value(name) else {
            break;
        };
        span = key.span().or(span);
        match index {
            Some(i) => {
                let Some(t) = item.as_array_of_tables().and_then(|a| a.get(i)) else {
                    break;
                };
                span = t.span().or(span);
                table = t;
            }
            None => match item.as_table_like() {
                Some(t) => table = t,
                None => break,
            },
        }
    }
    span
}
