//! IDLE (RFC 2177): announces changes as store events arrive until the client sends DONE.

use crate::output::Output;
use crate::session::{Done, Next, Session, State, Step};

impl Session {
    pub(crate) async fn idle(&mut self, tag: String, out: &mut Output) -> Done {
        self.idle_tag = Some(tag);
        out.extend_from_slice(b"+ idling\r\n");
        if self.state == State::Selected {
            self.sync(out, true).await;
        }
        Done::pending(Next::Idle)
    }

    /// The client answered an IDLE with a line.
    pub(crate) async fn idle_line(&mut self, line: &[u8]) -> Step {
        let tag = self.idle_tag.take().unwrap_or_else(|| "*".into());
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        let mut out = Output::new();
        if self.state == State::Selected {
            self.sync(&mut out, true).await;
        }
        if trimmed.eq_ignore_ascii_case(b"DONE") {
            out.extend_from_slice(format!("{tag} OK IDLE terminated\r\n").as_bytes());
            self.bad_in_row = 0;
            Step {
                output: out,
                next: Next::Line,
            }
        } else {
            let mut step = self.bad_reply(format!("{tag} BAD Expected DONE\r\n"));
            out.append(&mut step.output);
            step.output = out;
            step
        }
    }

    /// A store event arrived during IDLE, or between commands under NOTIFY: announce what
    /// changed — expunges during IDLE, and between commands only for NOTIFY's `selected`
    /// (`selected-delayed` holds them for a command that allows them).
    pub(crate) async fn idle_wake(&mut self) -> Output {
        let mut out = Output::new();
        let allow_expunge = self.idle_tag.is_some() || self.push_expunges();
        if self.state == State::Selected {
            self.sync(&mut out, allow_expunge).await;
        } else {
            self.drain_events();
            self.notify_flush(&mut out).await;
        }
        out
    }
}
