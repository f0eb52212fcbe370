//! The command-name dispatch: reads the command name and hands the arguments to the parser of
//! its family (commands without arguments, and the short ones, are parsed here).

use super::{PResult, Parser};
use crate::syntax::command::*;

/// URLs of one GENURLAUTH or URLFETCH (mechanisms of one RESETKEY).
pub const MAX_URLAUTH_URLS: usize = 100;

impl Parser<'_> {
    pub(super) fn command_body(&mut self) -> PResult<CommandKind> {
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
            "CANCELUPDATE" => {
                // `"CANCELUPDATE" 1*(SP quoted)` (RFC 5267 §5); a literal is taken too.
                let mut tags = Vec::new();
                while self.eat(b' ') {
                    let t = self.string()?;
                    tags.push(String::from_utf8(t).map_err(|_| "CANCELUPDATE tag is not UTF-8")?);
                }
                if tags.is_empty() {
                    return Err("CANCELUPDATE needs at least one tag".into());
                }
                CommandKind::CancelUpdate(tags)
            }
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
                let mut condstore = false;
                let mut qresync = None;
                if self.eat(b' ') {
                    self.expect(b'(')?;
                    self.items_until_close(false, |p| {
                        if p.keyword("CONDSTORE") {
                            condstore = true;
                            Ok(())
                        } else if p.keyword("QRESYNC") && qresync.is_none() {
                            p.sp()?;
                            qresync = Some(p.qresync_params()?);
                            Ok(())
                        } else {
                            Err("unknown or repeated SELECT parameter".into())
                        }
                    })?;
                }
                CommandKind::Select {
                    mailbox,
                    read_only: name == "EXAMINE",
                    condstore,
                    qresync,
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
            "COMPRESS" => {
                self.sp()?;
                CommandKind::Compress(self.atom()?)
            }
            "GETQUOTAROOT" => {
                self.sp()?;
                CommandKind::GetQuotaRoot(self.mailbox()?)
            }
            "GETQUOTA" => {
                self.sp()?;
                CommandKind::GetQuota(self.astring()?)
            }
            "SETQUOTA" => {
                self.sp()?;
                let root = self.astring()?;
                self.sp()?;
                self.expect(b'(')?;
                let mut limits = Vec::new();
                self.items_until_close(true, |p| {
                    if limits.len() >= 16 {
                        return Err("too many quota resources".into());
                    }
                    let resource = p.atom()?.to_ascii_uppercase();
                    p.sp()?;
                    limits.push((resource, p.number64()?));
                    Ok(())
                })?;
                CommandKind::SetQuota { root, limits }
            }
            "STATUS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let items = self.status_items()?;
                CommandKind::Status { mailbox, items }
            }
            "GETMETADATA" => self.get_metadata()?,
            "NOTIFY" => self.notify()?,
            // RFC 4314 §3: `mailbox SP identifier [SP mod-rights]`, identifier and rights astrings.
            "SETACL" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let identifier = self.astring()?;
                self.sp()?;
                let rights = self.astring()?;
                CommandKind::SetAcl {
                    mailbox,
                    identifier,
                    rights,
                }
            }
            "DELETEACL" | "LISTRIGHTS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let identifier = self.astring()?;
                if name == "DELETEACL" {
                    CommandKind::DeleteAcl {
                        mailbox,
                        identifier,
                    }
                } else {
                    CommandKind::ListRights {
                        mailbox,
                        identifier,
                    }
                }
            }
            "GETACL" => {
                self.sp()?;
                CommandKind::GetAcl(self.mailbox()?)
            }
            // RFC 4467 §7: `GENURLAUTH 1*(SP url-rump SP mechanism)`.
            "GENURLAUTH" => {
                let mut urls = Vec::new();
                while self.eat(b' ') {
                    let url = self.astring()?;
                    self.sp()?;
                    let mechanism = self.atom()?;
                    if urls.len() == MAX_URLAUTH_URLS {
                        return Err(format!("more than {MAX_URLAUTH_URLS} URLs"));
                    }
                    urls.push((url, mechanism));
                }
                if urls.is_empty() {
                    return Err("GENURLAUTH needs a URL and a mechanism".into());
                }
                CommandKind::GenUrlAuth(urls)
            }
            // `RESETKEY [SP mailbox *(SP mechanism)]`.
            "RESETKEY" => {
                let mut mailbox = None;
                let mut mechanisms = Vec::new();
                if self.eat(b' ') {
                    mailbox = Some(self.mailbox()?);
                    while self.eat(b' ') {
                        if mechanisms.len() == MAX_URLAUTH_URLS {
                            return Err("too many mechanisms".into());
                        }
                        mechanisms.push(self.atom()?);
                    }
                }
                CommandKind::ResetKey {
                    mailbox,
                    mechanisms,
                }
            }
            // `URLFETCH 1*(SP url)`.
            "URLFETCH" => {
                let mut urls = Vec::new();
                while self.eat(b' ') {
                    if urls.len() == MAX_URLAUTH_URLS {
                        return Err(format!("more than {MAX_URLAUTH_URLS} URLs"));
                    }
                    urls.push(self.astring()?);
                }
                if urls.is_empty() {
                    return Err("URLFETCH needs a URL".into());
                }
                CommandKind::UrlFetch(urls)
            }
            "MYRIGHTS" => {
                self.sp()?;
                CommandKind::MyRights(self.mailbox()?)
            }
            "SETMETADATA" => self.set_metadata()?,
            "APPEND" => self.append()?,
            "SEARCH" => self.search(false)?,
            "ESEARCH" => self.esearch()?,
            "SORT" => self.sort(false)?,
            "THREAD" => self.thread(false)?,
            "FETCH" => self.fetch(false)?,
            "STORE" => self.store(false)?,
            "COPY" => self.copy_move(false, false)?,
            "MOVE" => self.copy_move(false, true)?,
            "UID" => {
                self.sp()?;
                let sub = self.atom()?.to_ascii_uppercase();
                match sub.as_str() {
                    "SEARCH" => self.search(true)?,
                    "SORT" => self.sort(true)?,
                    "THREAD" => self.thread(true)?,
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
}
