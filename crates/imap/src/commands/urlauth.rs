//! URLAUTH (RFC 4467): GENURLAUTH signs the URL of a message in one of the session's own
//! mailboxes with that mailbox's access key (HMAC-SHA256 over the URL's rump, mechanism
//! INTERNAL); URLFETCH gives what a signed URL names to whom its access identifier admits,
//! whoever owns the mailbox (the URL is the authorisation, not the ACL); RESETKEY replaces a
//! mailbox's key, or every key of the account, voiding the URLs signed before. Keys live in the
//! store (`urlauth_keys`), so every node signs and checks alike.
//!
//! Access identifiers: `anonymous` and `authuser` admit any logged-in user of the server,
//! `user+<userid>` that user only; `submit+<userid>` is signed but never fetched here (it is for
//! a submission server's BURL, which Wharf does not offer). A URL past its `;EXPIRE=` fetches
//! nothing. Anything that does not verify is `NIL`, never an error, as the RFC asks.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::debug;
use wharf_store::{AccountId, Rights};

use crate::commands::catenate::{UrlCache, UrlScope, badurl};
use crate::output::Output;
use crate::session::{Done, Session};
use crate::spool::Lease;
use crate::syntax::{AuthUrl, UrlAccess, parse_auth_url, response};

type HmacSha256 = Hmac<Sha256>;

/// The one mechanism: the server's own keys.
const MECHANISM: &str = "INTERNAL";

fn mac(key_hex: &str, rump: &str) -> Option<HmacSha256> {
    let key = hex::decode(key_hex).ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(rump.as_bytes());
    Some(mac)
}

/// The verifier's token for `rump` under `key_hex`, as hex.
fn token(key_hex: &str, rump: &str) -> Option<String> {
    Some(hex::encode(mac(key_hex, rump)?.finalize().into_bytes()))
}

/// Whether `token_hex` is `rump`'s token under `key_hex` (compared in constant time).
fn verifies(key_hex: &str, rump: &str, token_hex: &str) -> bool {
    let (Some(mac), Ok(token)) = (mac(key_hex, rump), hex::decode(token_hex)) else {
        return false;
    };
    mac.verify_slice(&token).is_ok()
}

impl Session {
    /// The account a URL's user names: the address itself, or the user at the URL's host.
    async fn url_owner(&self, u: &AuthUrl) -> Result<Option<AccountId>, Done> {
        let address = if u.user.contains('@') {
            u.user.clone()
        } else {
            format!("{}@{}", u.user, u.host)
        };
        self.backend
            .mailboxes
            .account_by_address(&address)
            .await
            .map_err(Done::store)
    }

    pub(crate) async fn gen_url_auth(
        &mut self,
        urls: &[(String, String)],
        out: &mut Output,
    ) -> Done {
        let mut cache = UrlCache::default();
        let mut line = b"* GENURLAUTH".to_vec();
        for (url, mechanism) in urls {
            if !mechanism.eq_ignore_ascii_case(MECHANISM) {
                return Done::no(
                    None,
                    format!("Unknown URLAUTH mechanism {mechanism:?}, only INTERNAL"),
                );
            }
            let u = match parse_auth_url(url) {
                Ok(u) if u.verifier.is_none() => u,
                Ok(_) => return Done::bad("A URL to sign carries no verifier yet"),
                Err(why) => {
                    debug!(session = self.id, url, why, "GENURLAUTH URL refused");
                    return badurl(url);
                }
            };
            // Only a mailbox's owner signs its URLs (RFC 4467 §7: the URL's user is the
            // session's).
            if self.url_owner(&u).await.ok().flatten() != Some(self.account_id()) {
                return badurl(url);
            }
            let mb = match self
                .url_mailbox(
                    &u.target.mailbox,
                    UrlScope::Account(self.account_id()),
                    &mut cache,
                )
                .await
            {
                Ok(Some(m)) if u.target.uid_validity.is_none_or(|v| v == m.uid_validity) => m,
                Ok(_) => return badurl(url),
                Err(d) => return d,
            };
            let key = match self.backend.mailboxes.urlauth_key(mb.id, true).await {
                Ok(Some(k)) => k,
                Ok(None) => return badurl(url),
                Err(e) => return Done::store(e),
            };
            let Some(token) = token(&key, &u.rump) else {
                return Done::no(Some("SERVERBUG"), "Unusable access key");
            };
            line.push(b' ');
            response::astring(&mut line, &format!("{}:internal:{token}", u.rump));
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Done::ok("GENURLAUTH completed")
    }

    pub(crate) async fn url_fetch(&mut self, urls: &[String], out: &mut Output) -> Done {
        let mut cache = UrlCache::default();
        let mut line = b"* URLFETCH".to_vec();
        // The octets gathered are held under the budget every session's literals share, so
        // that many sessions fetching at once stay within one global bound.
        let mut lease: Option<Lease> = None;
        for url in urls {
            line.push(b' ');
            response::astring(&mut line, url);
            line.push(b' ');
            match self.authorized_bytes(url, &mut cache).await {
                Ok(Some(data)) => {
                    let Some(more) = self.shared.budget.try_reserve(data.len() as u64) else {
                        return Done::no(Some("LIMIT"), "Server busy, fetch fewer URLs or retry");
                    };
                    match lease.as_mut() {
                        Some(l) => l.merge(more),
                        None => lease = Some(more),
                    }
                    response::literal(&mut line, &data, false);
                }
                Ok(None) => line.extend_from_slice(b"NIL"),
                Err(d) => return d,
            }
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Done::ok("URLFETCH completed")
    }

    /// What a signed URL names, when its verifier, expiry and access admit this session.
    async fn authorized_bytes(
        &mut self,
        url: &str,
        cache: &mut UrlCache,
    ) -> Result<Option<Bytes>, Done> {
        let u = match parse_auth_url(url) {
            Ok(u) => u,
            Err(why) => {
                debug!(session = self.id, url, why, "URLFETCH URL refused");
                return Ok(None);
            }
        };
        let Some((mechanism, token)) = &u.verifier else {
            return Ok(None);
        };
        if !mechanism.eq_ignore_ascii_case(MECHANISM) {
            return Ok(None);
        }
        if u.expire
            .is_some_and(|t| t <= chrono::Utc::now().timestamp())
        {
            return Ok(None);
        }
        let admitted = match &u.access {
            UrlAccess::Anonymous | UrlAccess::AuthUser => true,
            UrlAccess::User(who) => self
                .account
                .as_ref()
                .is_some_and(|l| l.address.eq_ignore_ascii_case(who)),
            UrlAccess::Submit(_) => false,
        };
        if !admitted {
            return Ok(None);
        }
        let Some(owner) = self.url_owner(&u).await? else {
            return Ok(None);
        };
        let Some(mb) = self
            .url_mailbox(&u.target.mailbox, UrlScope::Account(owner), cache)
            .await?
        else {
            return Ok(None);
        };
        let key = match self.backend.mailboxes.urlauth_key(mb.id, false).await {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(e) => return Err(Done::store(e)),
        };
        if !verifies(&key, &u.rump, token) {
            return Ok(None);
        }
        self.url_target_bytes(&u.target, UrlScope::Account(owner), cache)
            .await
    }

    pub(crate) async fn reset_key(&mut self, mailbox: Option<&str>, mechanisms: &[String]) -> Done {
        if let Some(m) = mechanisms
            .iter()
            .find(|m| !m.eq_ignore_ascii_case(MECHANISM))
        {
            return Done::no(
                None,
                format!("Unknown URLAUTH mechanism {m:?}, only INTERNAL"),
            );
        }
        let target = match mailbox {
            None => None,
            Some(name) => match self.open_mailbox(name, Rights::NONE).await {
                // The keys are the owner's: another account's mailbox is not reset from here.
                Ok(f) if f.mailbox.account_id == self.account_id() => Some(f.mailbox.id),
                Ok(_) => return Done::no(Some("NOPERM"), "Only its owner resets a mailbox's key"),
                Err(d) => return d,
            },
        };
        match self
            .backend
            .mailboxes
            .reset_urlauth_keys(self.account_id(), target)
            .await
        {
            Ok(()) => Done::ok("RESETKEY completed"),
            Err(e) => Done::store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_their_rump_and_key() {
        let key = "00".repeat(32);
        let other = "01".repeat(32);
        let rump = "imap://a@example.test/INBOX/;uid=1;urlauth=authuser";
        let t = token(&key, rump).unwrap();
        assert_eq!(t.len(), 64);
        assert!(verifies(&key, rump, &t));
        assert!(!verifies(&other, rump, &t));
        assert!(!verifies(
            &key,
            "imap://a@example.test/INBOX/;uid=2;urlauth=authuser",
            &t
        ));
        assert!(!verifies(&key, rump, &t[..62]));
        assert!(!verifies(&key, rump, "zz"));
        assert!(!verifies("not hex", rump, &t));
    }
}
