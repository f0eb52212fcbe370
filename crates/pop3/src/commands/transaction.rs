//! TRANSACTION state: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP over the login snapshot.
//! Message numbers never change during the session; a message expunged elsewhere since login is
//! answered with `-ERR no such message` by RETR/TOP, never replaced by another one.

use crate::session::{Next, Session, State, Transaction};
use crate::syntax::{Command, Output, RespCode};
use crate::transfer::MessageStream;

/// The stable UIDL of a message: UIDVALIDITY and UID, both fixed while the mailbox exists.
pub fn unique_id(uid_validity: u32, uid: u32) -> String {
    format!("{uid_validity}.{uid}")
}

impl Transaction {
    fn live(&self) -> impl Iterator<Item = (usize, &crate::backend::DropEntry)> {
        self.snapshot
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    fn totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, s), (_, e)| (n + 1, s + e.size))
    }

    /// Index of message number `n`, or the error text.
    fn index(&self, n: u64) -> Result<usize, String> {
        let len = self.snapshot.entries.len() as u64;
        if n == 0 || n > len {
            return Err("no such message".to_string());
        }
        let i = (n - 1) as usize;
        if self.deleted[i] {
            return Err(format!("message {n} already deleted"));
        }
        Ok(i)
    }
}

impl Session {
    pub(crate) async fn transaction_command(&mut self, cmd: Command, out: &mut Output) -> Next {
        let State::Transaction(t) = &mut self.state else {
            return Next::ReadLine;
        };
        match cmd {
            Command::Capa => {
                out.ok("Capability list follows");
                out.listing(self.capabilities());
            }
            Command::Noop => out.ok(""),
            Command::Stat => {
                let (n, size) = t.totals();
                out.ok(&format!("{n} {size}"));
            }
            Command::List(None) => {
                let (n, size) = t.totals();
                out.ok(&format!("{n} messages ({size} octets)"));
                out.listing(t.live().map(|(i, e)| format!("{} {}", i + 1, e.size)));
            }
            Command::List(Some(n)) => match t.index(n) {
                Ok(i) => out.ok(&format!("{n} {}", t.snapshot.entries[i].size)),
                Err(msg) => out.err(None, &msg),
            },
            Command::Uidl(None) => {
                out.ok("unique-id listing follows");
                let v = t.snapshot.uid_validity;
                out.listing(
                    t.live()
                        .map(|(i, e)| format!("{} {}", i + 1, unique_id(v, e.uid))),
                );
            }
            Command::Uidl(Some(n)) => match t.index(n) {
                Ok(i) => out.ok(&format!(
                    "{n} {}",
                    unique_id(t.snapshot.uid_validity, t.snapshot.entries[i].uid)
                )),
                Err(msg) => out.err(None, &msg),
            },
            Command::Dele(n) => match t.index(n) {
                Ok(i) => {
                    t.deleted[i] = true;
                    out.ok(&format!("message {n} deleted"));
                }
                Err(msg) => out.err(None, &msg),
            },
            Command::Rset => {
                t.deleted.iter_mut().for_each(|d| *d = false);
                let (n, size) = t.totals();
                out.ok(&format!("maildrop has {n} messages ({size} octets)"));
            }
            Command::Retr(n) => self.serve(n, None, out).await,
            Command::Top(n, lines) => self.serve(n, Some(lines), out).await,
            Command::Quit => return self.update(out).await,
            Command::User(_)
            | Command::Pass(_)
            | Command::Auth { .. }
            | Command::Apop
            | Command::Stls => {
                return self.protocol_error(out, "already authenticated");
            }
        }
        Next::ReadLine
    }

    /// RETR (`top: None`) and TOP: the message is opened and checked before `+OK`, so a store
    /// failure is an `-ERR`; its body is then streamed by the connection loop (`MessageStream`).
    async fn serve(&mut self, n: u64, top: Option<u64>, out: &mut Output) {
        let max = self.cfg.max_message_size;
        let State::Transaction(t) = &mut self.state else {
            return;
        };
        let i = match t.index(n) {
            Ok(i) => i,
            Err(msg) => return out.err(None, &msg),
        };
        let entry = t.snapshot.entries[i].clone();
        if t.gone.contains(&entry.uid) {
            return out.err(None, "no such message");
        }
        if entry.size > max {
            tracing::warn!(
                uid = entry.uid,
                size = entry.size,
                "pop3: message above max_message_size"
            );
            return out.err(Some(RespCode::SysPerm), "message too large to retrieve");
        }
        let body = match self.maildrop.open(entry.message_id).await {
            Ok(Some(body)) => body,
            Ok(None) => return out.err(None, "no such message"),
            Err(e) => {
                tracing::warn!(uid = entry.uid, error = %e, "pop3: opening message failed");
                return out.err(Some(RespCode::SysTemp), "message temporarily unavailable");
            }
        };
        // Someone (IMAP) may have expunged it since login: ask for expunges since the last check.
        match self
            .maildrop
            .vanished_since(t.snapshot.mailbox_id, t.checked_modseq)
            .await
        {
            Ok(v) => {
                t.gone.extend(v.uids);
                t.checked_modseq = t.checked_modseq.max(v.modseq);
            }
            Err(e) => {
                tracing::warn!(error = %e, "pop3: checking for expunges failed");
                return out.err(Some(RespCode::SysTemp), "maildrop temporarily unavailable");
            }
        }
        if t.gone.contains(&entry.uid) {
            return out.err(None, "no such message");
        }
        if body.size != entry.stored_size {
            tracing::error!(
                uid = entry.uid,
                "pop3: stored message changed size since login"
            );
            return out.err(Some(RespCode::SysTemp), "message temporarily unavailable");
        }
        match top {
            None => {
                t.retrieved[i] = true;
                out.ok(&format!("{} octets", entry.size));
                out.message(MessageStream::retr(body.reader, entry.size));
            }
            Some(lines) => {
                out.ok("top of message follows");
                out.message(MessageStream::top(body.reader, lines));
            }
        }
    }
}
