//! The doctor's table: sections of ✔/!/✘ rows, each problem with the exact fix under it, and the
//! summary line.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug)]
pub(super) struct Row {
    pub(super) mark: Mark,
    pub(super) topic: String,
    pub(super) text: String,
    pub(super) fix: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct Report {
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
    }
}
