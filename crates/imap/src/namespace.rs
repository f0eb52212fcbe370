//! The namespaces of a session (RFC 2342) and what a mailbox name means in them:
//! - personal (prefix `""`): the account's own mailboxes, on which it holds every right;
//! - other users (`Other Users/<address>/<name>`): another account's mailbox whose ACL grants
//!   this account, or anyone, some right (RFC 4314);
//! - shared (`Shared/<name>`): the mailboxes of the account `[imap] shared_account` names,
//!   granted the same way; that account's mailboxes appear here and not under Other Users.
//!
//! Owns the mapping from a name as the client spells it to the owning account, the name in that
//! account and the rights the session holds, and the check of a command's rights (RFC 4314
//! §4, §6: a mailbox the session may not even look up does not exist for it). Every command
//! that names a mailbox goes through `open_mailbox`, so no command reaches another account's
//! mailbox without its rights.

use wharf_store::{AccountId, Mailbox, Rights};

use crate::session::{Done, Session, normalize_inbox};

/// The prefix (without its delimiter) of other accounts' shared mailboxes.
pub(crate) const OTHER_USERS: &str = "Other Users";
/// The prefix of the shared account's mailboxes.
pub(crate) const SHARED: &str = "Shared";

/// Where a name (decoded, as stored) lies.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    /// The session's own mailbox of this name.
    Personal(&'a str),
    /// `Other Users/<owner>/<name>`; `name` is `INBOX`-normalised.
    OtherUser { owner: &'a str, name: String },
    /// `Shared/<name>`.
    Shared(String),
    /// A namespace's own level (`Other Users`, `Other Users/<owner>`, `Shared`): never a mailbox.
    Level,
}

/// The place of a name; `shared` says whether the Shared namespace exists.
pub(crate) fn place(name: &str, shared: bool) -> Place<'_> {
    if let Some(rest) = below(name, OTHER_USERS) {
        return match rest.and_then(|r| r.split_once('/')) {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() => Place::OtherUser {
                owner,
                name: normalize_inbox(name),
            },
            _ => Place::Level,
        };
    }
    if shared && let Some(rest) = below(name, SHARED) {
        return match rest {
            Some(name) if !name.is_empty() => Place::Shared(name.to_string()),
            _ => Place::Level,
        };
    }
    Place::Personal(name)
}

/// `Some(None)` when `name` is `prefix` itself, `Some(Some(rest))` when below it.
fn below<'a>(name: &'a str, prefix: &str) -> Option<Option<&'a str>> {
    if name == prefix {
        return Some(None);
    }
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .map(Some)
}

/// The mailbox a name resolves to, in the account that owns it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub account: AccountId,
    /// The name in the owner's account.
    pub name: String,
    /// What the session's namespace puts before it (`""` for its own mailboxes).
    pub prefix: String,
}

impl Target {
    pub fn is_personal(&self) -> bool {
        self.prefix.is_empty()
    }
    /// The name as this session sees it.
    pub fn visible(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
}

/// A mailbox a command named, with the rights the session holds on it; `mailbox.name` is the
/// name as the session sees it (with its namespace prefix).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub mailbox: Mailbox,
    pub rights: Rights,
    /// The name in the owner's account.
    pub in_account: String,
}

/// Rights that make a selection READ-WRITE (RFC 4314 §5.2: `i`, `e` or a right to change
/// flags; without any, SELECT is read-only).
pub(crate) const WRITE_RIGHTS: Rights = Rights::SEEN
    .union(Rights::WRITE)
    .union(Rights::DELETE_MESSAGES)
    .union(Rights::EXPUNGE)
    .union(Rights::INSERT);

/// Rights any one of which lets MYRIGHTS answer (RFC 4314 §4).
pub(crate) const ANY_VISIBLE_RIGHT: Rights = Rights::LOOKUP
    .union(Rights::READ)
    .union(Rights::INSERT)
    .union(Rights::CREATE)
    .union(Rights::DELETE_MAILBOX)
    .union(Rights::ADMIN);

/// Rights any one of which (with `l`) lets GETMETADATA read a mailbox's entries (RFC 5464 §3.3).
pub(crate) const METADATA_READ_RIGHTS: Rights = Rights::READ
    .union(Rights::SEEN)
    .union(Rights::WRITE)
    .union(Rights::INSERT)
    .union(Rights::POST);

/// The one refusal for creating (or renaming to) a name in another account the session may not
/// create: the same whether the name exists or not (RFC 4314 §6).
pub(crate) const NO_CREATE: &str = "No mailbox can be created there";

/// The refusal for a mailbox the session lacks `need` on: it exists for the session only when
/// it may look it up (RFC 4314 §6).
pub(crate) fn refusal(rights: Rights, need: Rights) -> Done {
    if rights.contains(Rights::LOOKUP) {
        Done::no(Some("NOPERM"), format!("Right {:?} needed", need.letters()))
    } else {
        Done::no(Some("NONEXISTENT"), "No such mailbox")
    }
}

impl Session {
    /// Whether the Shared namespace exists on this server.
    fn shared_namespace(&self) -> bool {
        self.cfg.shared_account.is_some()
    }

    /// `* NAMESPACE` (RFC 2342): personal, other users, shared.
    pub(crate) fn namespace_line(&self) -> String {
        let shared = if self.shared_namespace() {
            format!("((\"{SHARED}/\" \"/\"))")
        } else {
            "NIL".to_string()
        };
        format!("* NAMESPACE ((\"\" \"/\")) ((\"{OTHER_USERS}/\" \"/\")) {shared}\r\n")
    }

    /// The owner and in-account name of a decoded name; `None` for a namespace level or an
    /// owner that does not exist (or is the session's own account, never shown as another).
    pub(crate) async fn target(&self, name: &str) -> Result<Option<Target>, Done> {
        let me = self.account_id();
        let place = place(name, self.shared_namespace());
        // An own mailbox made under a namespace's prefix before that namespace existed (a
        // "Shared/…" folder before `shared_account` was set) stays the owner's to reach.
        if !matches!(place, Place::Personal(_))
            && self
                .backend
                .mailboxes
                .get(me, name)
                .await
                .map_err(Done::store)?
                .is_some_and(|m| m.account_id == me)
        {
            return Ok(Some(Target {
                account: me,
                name: name.to_string(),
                prefix: String::new(),
            }));
        }
        match place {
            Place::Personal(n) => Ok(Some(Target {
                account: me,
                name: n.to_string(),
                prefix: String::new(),
            })),
            Place::Level => Ok(None),
            Place::OtherUser { owner, name } => {
                if self.is_shared_account(owner) {
                    return Ok(None);
                }
                let Some(account) = self.account_of(owner).await? else {
                    return Ok(None);
                };
                if account == me {
                    return Ok(None);
                }
                // The owner as stored, whatever case the client wrote: one name per mailbox.
                let Some(owner) = self
                    .backend
                    .mailboxes
                    .account_address(account)
                    .await
                    .map_err(Done::store)?
                else {
                    return Ok(None);
                };
                Ok(Some(Target {
                    account,
                    name,
                    prefix: format!("{OTHER_USERS}/{owner}/"),
                }))
            }
            Place::Shared(name) => {
                let Some(address) = self.cfg.shared_account.as_deref() else {
                    return Ok(None);
                };
                let Some(account) = self.account_of(address).await? else {
                    return Ok(None);
                };
                Ok((account != me).then(|| Target {
                    account,
                    name,
                    prefix: format!("{SHARED}/"),
                }))
            }
        }
    }

    fn is_shared_account(&self, address: &str) -> bool {
        self.cfg
            .shared_account
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(address))
    }

    async fn account_of(&self, address: &str) -> Result<Option<AccountId>, Done> {
        self.backend
            .mailboxes
            .account_by_address(address)
            .await
            .map_err(Done::store)
    }

    /// The mailbox a decoded name resolves to and the session's rights on it; `None` when
    /// there is none or the session holds no right on it.
    pub(crate) async fn resolve(&self, name: &str) -> Result<Option<Found>, Done> {
        let Some(target) = self.target(name).await? else {
            return Ok(None);
        };
        self.resolve_target(&target).await
    }

    pub(crate) async fn resolve_target(&self, target: &Target) -> Result<Option<Found>, Done> {
        let mb = match self
            .backend
            .mailboxes
            .get(target.account, &target.name)
            .await
        {
            Ok(Some(m)) if m.account_id == target.account => m,
            Ok(_) => return Ok(None),
            Err(e) => return Err(Done::store(e)),
        };
        let rights = if target.is_personal() {
            Rights::ALL
        } else {
            self.backend
                .mailboxes
                .rights_on(self.account_id(), mb.id)
                .await
                .map_err(Done::store)?
        };
        if rights.is_empty() {
            return Ok(None);
        }
        let visible = target.visible(&mb.name);
        Ok(Some(Found {
            in_account: mb.name.clone(),
            mailbox: Mailbox {
                name: visible,
                ..mb
            },
            rights,
        }))
    }

    /// The mailbox a command names (as the client spelled it), when the session holds `need`
    /// on it; `NO [NONEXISTENT]` or `NO [NOPERM]` otherwise.
    pub(crate) async fn open_mailbox(&self, name: &str, need: Rights) -> Result<Found, Done> {
        let name = self.mailbox_in(name)?;
        match self.resolve(&name).await? {
            None => Err(Done::no(Some("NONEXISTENT"), "No such mailbox")),
            Some(f) if !f.rights.contains(need) => Err(refusal(f.rights, need)),
            Some(f) => Ok(f),
        }
    }

    /// `open_mailbox` without the rights.
    pub(crate) async fn find_mailbox(&self, name: &str, need: Rights) -> Result<Mailbox, Done> {
        Ok(self.open_mailbox(name, need).await?.mailbox)
    }

    /// Other accounts' mailboxes the session may look up (`l`), named as it sees them, with
    /// its rights; for LIST and LSUB.
    pub(crate) async fn foreign_mailboxes(&self) -> Result<Vec<Found>, Done> {
        let shared = self
            .backend
            .mailboxes
            .shared_with(self.account_id())
            .await
            .map_err(Done::store)?;
        Ok(shared
            .into_iter()
            .filter(|s| s.rights.contains(Rights::LOOKUP))
            .map(|s| {
                let name = if self.is_shared_account(&s.owner) {
                    format!("{SHARED}/{}", s.mailbox.name)
                } else {
                    format!("{OTHER_USERS}/{}/{}", s.owner, s.mailbox.name)
                };
                Found {
                    in_account: s.mailbox.name.clone(),
                    mailbox: Mailbox { name, ..s.mailbox },
                    rights: s.rights,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_in_their_namespace() {
        assert_eq!(place("INBOX", true), Place::Personal("INBOX"));
        assert_eq!(place("Other", true), Place::Personal("Other"));
        assert_eq!(
            place("Other Usersx/a", true),
            Place::Personal("Other Usersx/a")
        );
        assert_eq!(place("Other Users", true), Place::Level);
        assert_eq!(place("Other Users/b@x.test", true), Place::Level);
        assert_eq!(place("Other Users//Team", true), Place::Level);
        assert_eq!(
            place("Other Users/b@x.test/inbox/Sub", true),
            Place::OtherUser {
                owner: "b@x.test",
                name: "INBOX/Sub".into()
            }
        );
        assert_eq!(place("Shared", true), Place::Level);
        assert_eq!(place("Shared/News", true), Place::Shared("News".into()));
        // Without a shared account, "Shared" is an ordinary personal name.
        assert_eq!(place("Shared/News", false), Place::Personal("Shared/News"));
    }
}
