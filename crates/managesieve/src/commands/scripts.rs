//! The authenticated state's commands on the account's scripts (RFC 5804 sections 2.5-2.12):
//! HAVESPACE, PUTSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT,
//! CHECKSCRIPT. Names are checked against section 1.6, scripts compiled by the `ScriptChecker`
//! before they are stored, quotas enforced before the store is asked.

use wharf_store::StoreError;

use crate::backend::{Login, ScriptQuota};
use crate::session::{Next, Session};
use crate::syntax::{self, Code, Command, Output};

impl Session {
    pub(crate) async fn script_command(
        &mut self,
        login: &Login,
        cmd: Command,
        out: &mut Output,
    ) -> Next {
        match cmd {
            Command::HaveSpace { name, size } => self.have_space(login, &name, size, out).await,
            Command::PutScript { name, content } => {
                self.put_script(login, &name, &content, out).await
            }
            Command::ListScripts => self.list_scripts(login, out).await,
            Command::SetActive(name) => self.set_active(login, &name, out).await,
            Command::GetScript(name) => self.get_script(login, &name, out).await,
            Command::DeleteScript(name) => self.delete_script(login, &name, out).await,
            Command::RenameScript { from, to } => self.rename_script(login, &from, &to, out).await,
            Command::CheckScript(content) => {
                let Some(source) = self.script_text(&content, out) else {
                    return Next::ReadLine;
                };
                match self.checker.check_with_warnings(source) {
                    Ok(w) if w.is_empty() => out.ok(None, "Script is valid"),
                    Ok(w) => out.ok(Some(&Code::Warnings), &w.join("\n")),
                    Err(e) => {
                        tracing::debug!(peer = %self.info.peer, error = %e, "managesieve: invalid script checked");
                        out.no(None, &e);
                    }
                }
                Next::ReadLine
            }
            // Handled by the session before it gets here.
            Command::Authenticate { .. }
            | Command::StartTls
            | Command::Logout
            | Command::Capability
            | Command::Noop(_)
            | Command::Unauthenticate => Next::ReadLine,
        }
    }

    /// A name checked against RFC 5804 section 1.6, or the NO already answered.
    fn name<'a>(&mut self, name: &'a [u8], out: &mut Output) -> Option<&'a str> {
        match syntax::script_name(name) {
            Ok(n) => Some(n),
            Err(why) => {
                tracing::debug!(peer = %self.info.peer, why, "managesieve: bad script name");
                out.no(None, &format!("Invalid script name: {why}"));
                None
            }
        }
    }

    /// A script's octets as text (Sieve scripts are UTF-8), or the NO already answered.
    fn script_text<'a>(&self, content: &'a [u8], out: &mut Output) -> Option<&'a str> {
        if content.len() as u64 > self.cfg.max_script_size {
            out.no(
                Some(&Code::QuotaMaxSize),
                &format!(
                    "Script larger than the maximum of {} octets",
                    self.cfg.max_script_size
                ),
            );
            return None;
        }
        match std::str::from_utf8(content) {
            Ok(s) => Some(s),
            Err(e) => {
                // Where the first bad octet is, in the checker's "line L, column C" form.
                let valid = String::from_utf8_lossy(&content[..e.valid_up_to()]);
                let line = valid.matches('\n').count() + 1;
                let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                out.no(
                    None,
                    &format!("line {line}, column {column}: script is not valid UTF-8"),
                );
                None
            }
        }
    }

    /// Store failure answered as `NO (TRYLATER)` (`NO (QUOTA)` for a storage quota).
    fn store_failed(&self, login: &Login, what: &str, e: StoreError, out: &mut Output) {
        match e {
            StoreError::OverQuota => out.no(Some(&Code::Quota), "Storage quota exceeded"),
            StoreError::Limit(l) => {
                out.no(Some(&Code::QuotaMaxScripts), &format!("Limit reached: {l}"))
            }
            e => {
                tracing::warn!(account = %login.address, error = %e, "managesieve: {what} failed");
                out.no(
                    Some(&Code::TryLater),
                    "Script storage temporarily unavailable",
                );
            }
        }
    }

    async fn quota(&self, login: &Login, out: &mut Output) -> Option<ScriptQuota> {
        match self.scripts.quota(login.account_id).await {
            Ok(q) => Some(ScriptQuota {
                max_scripts: q.max_scripts.min(self.cfg.max_scripts),
                max_script_size: q.max_script_size.min(self.cfg.max_script_size),
            }),
            Err(e) => {
                self.store_failed(login, "reading the script quota", e, out);
                None
            }
        }
    }

    /// `true` when one more script named `name` fits (it exists, or the count is below the
    /// bound); else the NO is answered.
    async fn room_for(
        &self,
        login: &Login,
        name: &str,
        quota: &ScriptQuota,
        out: &mut Output,
    ) -> bool {
        let scripts = match self.scripts.list(login.account_id).await {
            Ok(s) => s,
            Err(e) => {
                self.store_failed(login, "listing scripts", e, out);
                return false;
            }
        };
        if scripts.iter().any(|s| s.name == name)
            || scripts.len() < usize::try_from(quota.max_scripts).unwrap_or(usize::MAX)
        {
            return true;
        }
        out.no(
            Some(&Code::QuotaMaxScripts),
            &format!("At most {} scripts per account", quota.max_scripts),
        );
        false
    }

    async fn have_space(
        &mut self,
        login: &Login,
        name: &[u8],
        size: u64,
        out: &mut Output,
    ) -> Next {
        let Some(name) = self.name(name, out) else {
            return Next::ReadLine;
        };
        let Some(quota) = self.quota(login, out).await else {
            return Next::ReadLine;
        };
        if size > quota.max_script_size {
            out.no(
                Some(&Code::QuotaMaxSize),
                &format!(
                    "Script larger than the maximum of {} octets",
                    quota.max_script_size
                ),
            );
            return Next::ReadLine;
        }
        if self.room_for(login, name, &quota, out).await {
            out.ok(None, "Putscript would succeed");
        }
        Next::ReadLine
    }

    async fn put_script(
        &mut self,
        login: &Login,
        name: &[u8],
        content: &[u8],
        out: &mut Output,
    ) -> Next {
        let Some(name) = self.name(name, out) else {
            return Next::ReadLine;
        };
        let Some(quota) = self.quota(login, out).await else {
            return Next::ReadLine;
        };
        if content.len() as u64 > quota.max_script_size {
            out.no(
                Some(&Code::QuotaMaxSize),
                &format!(
                    "Script larger than the maximum of {} octets",
                    quota.max_script_size
                ),
            );
            return Next::ReadLine;
        }
        let Some(source) = self.script_text(content, out) else {
            return Next::ReadLine;
        };
        let warnings = match self.checker.check_with_warnings(source) {
            Ok(w) => w,
            Err(e) => {
                tracing::info!(account = %login.address, script = name, error = %e, "managesieve: invalid script refused");
                out.no(None, &e);
                return Next::ReadLine;
            }
        };
        if !self.room_for(login, name, &quota, out).await {
            return Next::ReadLine;
        }
        match self.scripts.put(login.account_id, name, source).await {
            Ok(()) => {
                tracing::info!(account = %login.address, script = name, octets = content.len(), "managesieve: script stored");
                if warnings.is_empty() {
                    out.ok(None, "Script stored");
                } else {
                    out.ok(Some(&Code::Warnings), &warnings.join("\n"));
                }
            }
            Err(e) => self.store_failed(login, "storing a script", e, out),
        }
        Next::ReadLine
    }

    async fn list_scripts(&mut self, login: &Login, out: &mut Output) -> Next {
        match self.scripts.list(login.account_id).await {
            Ok(scripts) => {
                for s in scripts {
                    if s.active {
                        out.string(s.name.as_bytes());
                        out.bytes.extend_from_slice(b" ACTIVE\r\n");
                    } else {
                        out.strings_line(&[s.name.as_bytes()]);
                    }
                }
                out.ok(None, "Listscripts completed");
            }
            Err(e) => self.store_failed(login, "listing scripts", e, out),
        }
        Next::ReadLine
    }

    async fn set_active(&mut self, login: &Login, name: &[u8], out: &mut Output) -> Next {
        let name = if name.is_empty() {
            None
        } else {
            match self.name(name, out) {
                Some(n) => Some(n),
                None => return Next::ReadLine,
            }
        };
        match self.scripts.set_active(login.account_id, name).await {
            Ok(()) => {
                tracing::info!(account = %login.address, script = name.unwrap_or(""), "managesieve: active script set");
                out.ok(
                    None,
                    if name.is_some() {
                        "Script activated"
                    } else {
                        "All scripts deactivated"
                    },
                );
            }
            Err(StoreError::NotFound(_)) => {
                out.no(Some(&Code::Nonexistent), "There is no script by that name")
            }
            Err(e) => self.store_failed(login, "activating a script", e, out),
        }
        Next::ReadLine
    }

    async fn get_script(&mut self, login: &Login, name: &[u8], out: &mut Output) -> Next {
        let Some(name) = self.name(name, out) else {
            return Next::ReadLine;
        };
        match self.scripts.get(login.account_id, name).await {
            Ok(Some(content)) => {
                out.literal(content.as_bytes());
                out.crlf();
                out.ok(None, "Getscript completed");
            }
            Ok(None) | Err(StoreError::NotFound(_)) => {
                out.no(Some(&Code::Nonexistent), "There is no script by that name")
            }
            Err(e) => self.store_failed(login, "reading a script", e, out),
        }
        Next::ReadLine
    }

    async fn delete_script(&mut self, login: &Login, name: &[u8], out: &mut Output) -> Next {
        let Some(name) = self.name(name, out) else {
            return Next::ReadLine;
        };
        match self.scripts.list(login.account_id).await {
            Ok(scripts) => match scripts.iter().find(|s| s.name == name) {
                None => {
                    out.no(Some(&Code::Nonexistent), "There is no script by that name");
                    return Next::ReadLine;
                }
                Some(s) if s.active => {
                    out.no(
                        Some(&Code::Active),
                        "The active script cannot be deleted: deactivate it first",
                    );
                    return Next::ReadLine;
                }
                Some(_) => {}
            },
            Err(e) => {
                self.store_failed(login, "listing scripts", e, out);
                return Next::ReadLine;
            }
        }
        match self.scripts.delete(login.account_id, name).await {
            Ok(()) => {
                tracing::info!(account = %login.address, script = name, "managesieve: script deleted");
                out.ok(None, "Script deleted");
            }
            Err(StoreError::NotFound(_)) => {
                out.no(Some(&Code::Nonexistent), "There is no script by that name")
            }
            // Made active by another session since the check above.
            Err(StoreError::Conflict(_)) => out.no(
                Some(&Code::Active),
                "The active script cannot be deleted: deactivate it first",
            ),
            Err(e) => self.store_failed(login, "deleting a script", e, out),
        }
        Next::ReadLine
    }

    async fn rename_script(
        &mut self,
        login: &Login,
        from: &[u8],
        to: &[u8],
        out: &mut Output,
    ) -> Next {
        let Some(from) = self.name(from, out) else {
            return Next::ReadLine;
        };
        let Some(to) = self.name(to, out) else {
            return Next::ReadLine;
        };
        match self.scripts.rename(login.account_id, from, to).await {
            Ok(()) => {
                tracing::info!(account = %login.address, from, to, "managesieve: script renamed");
                out.ok(None, "Script renamed");
            }
            Err(StoreError::NotFound(_)) => {
                out.no(Some(&Code::Nonexistent), "There is no script by that name")
            }
            Err(StoreError::AlreadyExists(_)) => out.no(
                Some(&Code::AlreadyExists),
                "A script with the new name already exists",
            ),
            Err(e) => self.store_failed(login, "renaming a script", e, out),
        }
        Next::ReadLine
    }
}
