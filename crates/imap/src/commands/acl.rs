//! The ACL commands (RFC 4314 §3): SETACL, DELETEACL, GETACL, LISTRIGHTS and MYRIGHTS, on the
//! account's own mailboxes, whose owner holds every right (`a` included), and on other accounts'
//! mailboxes (`namespace`) where the session holds `a` (MYRIGHTS: any right). Identifiers are
//! `anyone` (also spelled `authenticated`: every account of the server) or an account's address;
//! negative rights (`-identifier`) are not supported. Rights letters are RFC 4314's, with the
//! obsolete `c` (= `kx`) and `d` (= `te`); answers show both the letters held and `c`/`d`.
//! The rights are enforced where each command opens its mailbox (`namespace::open_mailbox`)
//! and, for the selected mailbox, by STORE, EXPUNGE, CLOSE, MOVE and FETCH's implicit \Seen.

use wharf_store::{AccountId, AclChange, Mailbox, Rights};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::response;

/// Who an identifier names.
enum Grantee {
    /// The mailbox's owner: holds every right, not in the ACL.
    Owner,
    /// `None`: anyone.
    Other(Option<AccountId>),
}

/// `SETACL`'s rights argument: replace, add (`+`) or remove (`-`).
fn mod_rights(arg: &str) -> Result<(Option<char>, Rights), Done> {
    let (op, letters) = match arg.chars().next() {
        Some(c @ ('+' | '-')) => (Some(c), &arg[1..]),
        _ => (None, arg),
    };
    match Rights::parse(letters) {
        Ok(r) => Ok((op, r)),
        Err(c) if c.is_ascii_uppercase() => Err(Done::bad(format!(
            "Rights are lower-case letters, not {c:?}"
        ))),
        Err(c) => Err(Done::bad(format!("Unknown right {c:?}"))),
    }
}

impl Session {
    /// The mailbox an ACL command names and what this session holds on it; `NO [NONEXISTENT]`.
    async fn acl_mailbox(&self, name: &str) -> Result<(Mailbox, Rights), Done> {
        let found = self.open_mailbox(name, Rights::NONE).await?;
        Ok((found.mailbox, found.rights))
    }

    /// Resolves an identifier (RFC 4314 §3: `anyone`, or an account's address).
    async fn grantee(&self, owner: AccountId, identifier: &str) -> Result<Grantee, Done> {
        if identifier.eq_ignore_ascii_case("anyone")
            || identifier.eq_ignore_ascii_case("authenticated")
        {
            return Ok(Grantee::Other(None));
        }
        if identifier.starts_with('-') {
            return Err(Done::no(
                Some("CANNOT"),
                "Negative rights are not supported",
            ));
        }
        match self
            .backend
            .mailboxes
            .account_by_address(identifier)
            .await
            .map_err(Done::store)?
        {
            Some(id) if id == owner => Ok(Grantee::Owner),
            Some(id) => Ok(Grantee::Other(Some(id))),
            None => Err(Done::no(
                Some("CANNOT"),
                format!("No account {identifier:?} to grant rights to"),
            )),
        }
    }

    /// The mailbox an ACL-changing or -reading command names, when this session holds `a` on it
    /// (RFC 4314 §4); without `l` either, it does not exist for the client (§6).
    async fn administered_mailbox(&self, name: &str) -> Result<Mailbox, Done> {
        let (mb, rights) = self.acl_mailbox(name).await?;
        if !rights.intersects(Rights::LOOKUP.union(Rights::ADMIN)) {
            return Err(Done::no(
                Some("NONEXISTENT"),
                format!("No such mailbox: {name}"),
            ));
        }
        if !rights.contains(Rights::ADMIN) {
            return Err(Done::no(Some("NOPERM"), "Administer right (a) needed"));
        }
        Ok(mb)
    }

    pub(crate) async fn set_acl(&mut self, name: &str, identifier: &str, rights: &str) -> Done {
        let (op, given) = match mod_rights(rights) {
            Ok(x) => x,
            Err(d) => return d,
        };
        // Applied to the stored entry inside the store's write: two SETACLs at once both count.
        let change = match op {
            None => AclChange::Replace(given),
            Some('+') => AclChange::Add(given),
            Some(_) => AclChange::Remove(given),
        };
        self.change_acl(name, identifier, change, "SETACL completed")
            .await
    }

    pub(crate) async fn delete_acl(&mut self, name: &str, identifier: &str) -> Done {
        let change = AclChange::Replace(Rights::NONE);
        self.change_acl(name, identifier, change, "DELETEACL completed")
            .await
    }

    /// SETACL and DELETEACL: `a` on the mailbox, a grantee other than the owner, one write.
    async fn change_acl(
        &mut self,
        name: &str,
        identifier: &str,
        change: AclChange,
        completed: &str,
    ) -> Done {
        let mb = match self.administered_mailbox(name).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let grantee = match self.grantee(mb.account_id, identifier).await {
            Ok(Grantee::Other(g)) => g,
            Ok(Grantee::Owner) => {
                return Done::no(Some("CANNOT"), "The owner always holds every right");
            }
            Err(d) => return d,
        };
        match self
            .backend
            .mailboxes
            .set_acl(mb.account_id, mb.id, grantee, change)
            .await
        {
            Ok(()) => Done::ok(completed),
            Err(e) => Done::store(e),
        }
    }

    /// `* ACL mailbox owner rights [identifier rights …]`: the owner first, then anyone, then
    /// the accounts by id.
    pub(crate) async fn get_acl(&mut self, name: &str, out: &mut Output) -> Done {
        let mb = match self.administered_mailbox(name).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let acl = match self.backend.mailboxes.acl(mb.id).await {
            Ok(a) => a,
            Err(e) => return Done::store(e),
        };
        let mut line = b"* ACL ".to_vec();
        response::astring(&mut line, name);
        let entry = |line: &mut Vec<u8>, who: &str, rights: Rights| {
            line.push(b' ');
            response::astring(line, who);
            line.push(b' ');
            response::astring(line, &rights.imap_letters());
        };
        match self.backend.mailboxes.account_address(mb.account_id).await {
            Ok(Some(owner)) => entry(&mut line, &owner, Rights::ALL),
            Ok(None) => {}
            Err(e) => return Done::store(e),
        }
        for (g, rights) in acl {
            let who = match g {
                None => "anyone".to_string(),
                Some(id) => match self.backend.mailboxes.account_address(id).await {
                    Ok(Some(a)) => a,
                    Ok(None) => continue,
                    Err(e) => return Done::store(e),
                },
            };
            entry(&mut line, &who, rights);
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Done::ok("GETACL completed")
    }

    /// `* LISTRIGHTS mailbox identifier required optional…` (RFC 4314 §3.7): the owner is
    /// granted everything; anyone else may be granted each right on its own.
    pub(crate) async fn list_rights(
        &mut self,
        name: &str,
        identifier: &str,
        out: &mut Output,
    ) -> Done {
        let mb = match self.administered_mailbox(name).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let owner = match self.grantee(mb.account_id, identifier).await {
            Ok(g) => matches!(g, Grantee::Owner),
            // An identifier with no account may still be asked about: it could be granted
            // nothing, but LISTRIGHTS describes what could be granted, not what is.
            Err(_) => false,
        };
        let mut line = b"* LISTRIGHTS ".to_vec();
        response::astring(&mut line, name);
        line.push(b' ');
        response::astring(&mut line, identifier);
        if owner {
            line.push(b' ');
            line.extend_from_slice(Rights::ALL.imap_letters().as_bytes());
        } else {
            line.extend_from_slice(b" \"\"");
            for c in Rights::ALL.letters().chars() {
                line.push(b' ');
                line.push(c as u8);
            }
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Done::ok("LISTRIGHTS completed")
    }

    /// `* MYRIGHTS mailbox rights` (RFC 4314 §3.8); any right is enough to ask.
    pub(crate) async fn my_rights(&mut self, name: &str, out: &mut Output) -> Done {
        let (_, mine) = match self.acl_mailbox(name).await {
            Ok(x) => x,
            Err(d) => return d,
        };
        // RFC 4314 §4: MYRIGHTS needs one of `l r i k x a`.
        if !mine.intersects(crate::namespace::ANY_VISIBLE_RIGHT) {
            return Done::no(Some("NONEXISTENT"), format!("No such mailbox: {name}"));
        }
        let mut line = b"* MYRIGHTS ".to_vec();
        response::astring(&mut line, name);
        line.push(b' ');
        response::astring(&mut line, &mine.imap_letters());
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Done::ok("MYRIGHTS completed")
    }
}
