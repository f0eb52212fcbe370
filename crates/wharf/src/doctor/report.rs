//! The doctor's table: sections of ✔/!/✘ rows, each problem with the exact fix under it, and the
//! summary line.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mark {
    Ok,
    Warn,
    Fail,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Ok => "✔",
            Mark::Warn => "!",
            Mark::Fail => "✘",
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Row {
    pub(super) mark: Mark,
    pub(super) topic: String,
    pub(super) text: String,
    pub(super) fix: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(super) sections: Vec<(String, Vec<Row>)>,
}

impl Report {
    pub(super) fn section(&mut self, title: impl Into<String>) {
        self.sections.push((title.into(), Vec::new()));
    }

    pub(super) fn push(
        &mut self,
        mark: Mark,
        topic: impl Into<String>,
        text: impl Into<String>,
        fix: Option<String>,
    ) {
        if self.sections.is_empty() {
            self.section("");
        }
        if let Some((_, rows)) = self.sections.last_mut() {
            rows.push(Row {
                mark,
                topic: topic.into(),
                text: text.into(),
                fix,
            });
        }
    }

    pub(super) fn ok(&mut self, topic: impl Into<String>, text: impl Into<String>) {
        self.push(Mark::Ok, topic, text, None);
    }

    pub(super) fn warn(
        &mut self,
        topic: impl Into<String>,
        text: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Mark::Warn, topic, text, Some(fix.into()));
    }

    pub(super) fn fail(
        &mut self,
        topic: impl Into<String>,
        text: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Mark::Fail, topic, text, Some(fix.into()));
    }

    pub(super) fn count(&self, mark: Mark) -> usize {
        self.sections
            .iter()
            .flat_map(|(_, rows)| rows)
            .filter(|r| r.mark == mark)
            .count()
    }

    /// The table as the admin API sends it (docs/api.md): each row's mark as `ok`, `warn` or
    /// `fail`, `fix` null on a row without one, and the summary's three counts.
    pub(crate) fn json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Section<'a> {
            title: &'a str,
            rows: &'a [Row],
        }
        let sections: Vec<Section> = self
            .sections
            .iter()
            .map(|(title, rows)| Section { title, rows })
            .collect();
        serde_json::json!({
            "sections": sections,
            "ok": self.count(Mark::Ok),
            "warnings": self.count(Mark::Warn),
            "failures": self.count(Mark::Fail),
        })
    }

    pub(super) fn render(&self) -> String {
        let width = self
            .sections
            .iter()
            .flat_map(|(_, rows)| rows)
            .map(|r| r.topic.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (title, rows) in &self.sections {
            let _ = writeln!(out, "\n{title}");
            for r in rows {
                let _ = writeln!(out, "  {} {:<width$}  {}", r.mark.symbol(), r.topic, r.text);
                if let Some(fix) = &r.fix {
                    let _ = writeln!(out, "    {:<width$}  fix: {fix}", "");
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{} ✔  {} !  {} ✘",
            self.count(Mark::Ok),
            self.count(Mark::Warn),
            self.count(Mark::Fail)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_marks_and_fixes() {
        let mut r = Report::default();
        r.section("S");
        r.ok("a", "fine");
        r.warn("bb", "meh", "do x");
        r.fail("c", "broken", "zone line");
        let text = r.render();
        assert!(
            text.contains("\nS\n  ✔ a   fine\n  ! bb  meh\n      "),
            "{text}"
        );
        assert!(text.contains("fix: do x"), "{text}");
        assert!(text.contains("  ✘ c   broken\n      "), "{text}");
        assert!(text.ends_with("1 ✔  1 !  1 ✘\n"), "{text}");
        assert_eq!(
            r.json(),
            serde_json::json!({
                "sections": [{"title": "S", "rows": [
                    {"mark": "ok", "topic": "a", "text": "fine", "fix": null},
                    {"mark": "warn", "topic": "bb", "text": "meh", "fix": "do x"},
                    {"mark": "fail", "topic": "c", "text": "broken", "fix": "zone line"},
                ]}],
                "ok": 1,
                "warnings": 1,
                "failures": 1,
            })
        );
    }
}
