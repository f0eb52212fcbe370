//! SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash), server side and sans-io: the stored verifier
//! (derivation and its text form in `Account::scram_sha256`), parsing of the client's two
//! messages, and proof verification. The SASL exchange in `sasl.rs` drives it; nothing here does
//! I/O, so the RFC's test vector can be replayed with an injected server nonce.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Iteration count of new verifiers (RFC 7677 §4: at least 4096).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// A stored verifier with more iterations than this is treated as corrupt rather than making
/// every login spin for minutes.
const MAX_ITERATIONS: u32 = 10_000_000;
/// Bounds on what a client may send, so a hostile message costs nothing.
const MAX_NONCE: usize = 256;
const MAX_NAME: usize = 512;
const MAX_MESSAGE: usize = 4096;

/// Prefix of the stored text form, which otherwise follows PostgreSQL's layout:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` with standard base64.
const PREFIX: &str = "SCRAM-SHA-256$";

/// What the server keeps instead of the password (RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramVerifier {
    // The keys are password-equivalent for the server side: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt", &B64.encode(&self.salt))
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl ScramVerifier {
    /// Derives the verifier of `password` (SASLprep-normalised as RFC 5802 §2.2 asks; a password
    /// SASLprep refuses is used as given, as other servers do).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
        let prepared =
            stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// A verifier with a fresh random 16-byte salt and the default iteration count.
    pub fn generate(password: &str) -> ScramVerifier {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        ScramVerifier::derive(password, &salt, DEFAULT_ITERATIONS)
    }

    /// A verifier no password matches, with a salt that is stable per user name, offered for
    /// unknown users so that the exchange does not reveal whether an account exists.
    pub fn decoy(secret: &[u8; 32], username: &str) -> ScramVerifier {
        let mut input = b"decoy-salt\0".to_vec();
        input.extend_from_slice(username.to_lowercase().as_bytes());
        let salt = hmac(secret, &input)[..16].to_vec();
        let mut stored_key = [0u8; 32];
        let mut server_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut stored_key);
        rand::rngs::OsRng.fill_bytes(&mut server_key);
        ScramVerifier {
            iterations: DEFAULT_ITERATIONS,
            salt,
            stored_key,
            server_key,
        }
    }

    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    /// Parses the text form written by `encode`; `None` for anything else.
    pub fn decode(s: &str) -> Option<ScramVerifier> {
        let rest = s.strip_prefix(PREFIX)?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok()?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return None;
        }
        let salt = B64.decode(salt).ok()?;
        if salt.is_empty() {
            return None;
        }
        Some(ScramVerifier {
            iterations,
            salt,
            stored_key: B64.decode(stored).ok()?.try_into().ok()?,
            server_key: B64.decode(server).ok()?.try_into().ok()?,
        })
    }
}

/// Why a SCRAM message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The message breaks RFC 5802's grammar or asks for something we do not do (the text says which).
    Malformed(String),
    /// Well-formed, but the proof does not match the verifier: a wrong password.
    InvalidProof,
}

fn malformed<T>(why: impl Into<String>) -> Result<T, ScramError> {
    Err(ScramError::Malformed(why.into()))
}

/// The parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,`, `y,,` or with `a=…`: echoed (base64) in the client-final `c=` attribute.
    pub gs2_header: String,
    pub authzid: Option<String>,
    pub username: String,
    pub client_nonce: String,
    /// client-first-message-bare, part of the AuthMessage.
    pub bare: String,
}

fn utf8(msg: &[u8]) -> Result<&str, ScramError> {
    if msg.len() > MAX_MESSAGE {
        return malformed("message too long");
    }
    std::str::from_utf8(msg).or_else(|_| malformed("message is not UTF-8"))
}

/// Decodes a `saslname` (RFC 5802 §5.1): `=2C` is a comma, `=3D` an equals sign, nothing else may
/// follow `=`, and a bare comma cannot appear.
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    if s.is_empty() {
        return malformed("empty user name");
    }
    if s.len() > MAX_NAME {
        return malformed("user name too long");
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3) {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return malformed("bad '=' escape in user name"),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.chars().any(char::is_control) {
        return malformed("control character in user name");
    }
    Ok(out)
}

fn check_nonce(n: &str) -> Result<(), ScramError> {
    if n.is_empty() {
        return malformed("empty nonce");
    }
    if n.len() > MAX_NONCE {
        return malformed("nonce too long");
    }
    // printable = %x21-2B / %x2D-7E (no comma)
    if !n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
        return malformed("nonce has a non-printable character");
    }
    Ok(())
}

impl ClientFirst {
    pub fn parse(msg: &[u8]) -> Result<ClientFirst, ScramError> {
        let msg = utf8(msg)?;
        let mut parts = msg.splitn(3, ',');
        let (Some(cbind), Some(authzid_raw), Some(bare)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return malformed("client-first-message needs a GS2 header");
        };
        match cbind {
            // 'y': the client could bind but thinks we cannot; true, we advertise no -PLUS variant.
            "n" | "y" => {}
            _ if cbind.starts_with("p=") => return malformed("channel binding is not supported"),
            _ => return malformed("bad channel binding flag"),
        }
        let authzid = match authzid_raw {
            "" => None,
            a => match a.strip_prefix("a=") {
                Some(name) => Some(decode_saslname(name)?),
                None => return malformed("bad authzid in GS2 header"),
            },
        };
        let mut attrs = bare.split(',');
        let user = attrs.next().unwrap_or("");
        if user.starts_with("m=") {
            return malformed("mandatory extension not supported");
        }
        let Some(user) = user.strip_prefix("n=") else {
            return malformed("client-first-message must start with n=");
        };
        let username = decode_saslname(user)?;
        let Some(nonce) = attrs.next().and_then(|a| a.strip_prefix("r=")) else {
            return malformed("client-first-message needs r= after n=");
        };
        check_nonce(nonce)?;
        for ext in attrs {
            check_extension(ext)?;
        }
        Ok(ClientFirst {
            gs2_header: format!("{cbind},{authzid_raw},"),
            authzid,
            username,
            client_nonce: nonce.to_string(),
            bare: bare.to_string(),
        })
    }
}

/// Optional extensions (`x=value`, one ASCII letter) are allowed and ignored.
fn check_extension(ext: &str) -> Result<(), ScramError> {
    let b = ext.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'=' {
        Ok(())
    } else {
        malformed("bad attribute")
    }
}

/// A fresh server nonce part: 18 random bytes, base64 (24 printable characters, never a comma).
pub fn server_nonce() -> String {
    let mut b = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

/// The server half of one exchange after the client-first-message.
#[derive(Debug, Clone)]
pub struct ScramServer {
    client_first: ClientFirst,
    verifier: ScramVerifier,
    nonce: String,
    server_first: String,
}

impl ScramServer {
    /// `server_nonce` is appended to the client's nonce (use `server_nonce()`; tests inject one).
    pub fn new(
        client_first: ClientFirst,
        verifier: ScramVerifier,
        server_nonce: &str,
    ) -> ScramServer {
        let nonce = format!("{}{}", client_first.client_nonce, server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&verifier.salt),
            verifier.iterations
        );
        ScramServer {
            client_first,
            verifier,
            nonce,
            server_first,
        }
    }

    pub fn client_first(&self) -> &ClientFirst {
        &self.client_first
    }

    /// The server-first-message to send as a challenge.
    pub fn server_first(&self) -> &str {
        &self.server_first
    }

    /// Checks the client-final-message; on success returns the server-final-message (`v=…`).
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let msg = utf8(client_final)?;
        let Some(p) = msg.rfind(",p=") else {
            return malformed("client-final-message needs p= last");
        };
        let without_proof = &msg[..p];
        let proof = B64
            .decode(&msg[p + 3..])
            .or_else(|_| malformed("proof is not base64"))?;
        let proof: [u8; 32] = proof
            .try_into()
            .or_else(|_| malformed("proof must be 32 octets"))?;

        let mut attrs = without_proof.split(',');
        let Some(cbind) = attrs.next().and_then(|a| a.strip_prefix("c=")) else {
            return malformed("client-final-message must start with c=");
        };
        let cbind = B64
            .decode(cbind)
            .or_else(|_| malformed("c= is not base64"))?;
        if cbind != self.client_first.gs2_header.as_bytes() {
            return malformed("channel binding data does not match the GS2 header");
        }
        let Some(nonce) = attrs.next().and_then(|a| a.strip_prefix("r=")) else {
            return malformed("client-final-message needs r= after c=");
        };
        if nonce != self.nonce {
            return malformed("nonce does not match");
        }
        for ext in attrs {
            check_extension(ext)?;
        }

        let auth_message = format!(
            "{},{},{}",
            self.client_first.bare, self.server_first, without_proof
        );
        let client_signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(client_signature) {
            *k ^= s;
        }
        let candidate: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(candidate.ct_eq(&self.verifier.stored_key)) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 §3.
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_server() -> ScramServer {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = ScramVerifier::derive("pencil", &salt, 4096);
        let first = ClientFirst::parse(CLIENT_FIRST.as_bytes()).unwrap();
        assert_eq!(first.username, "user");
        assert_eq!(first.authzid, None);
        ScramServer::new(first, verifier, SERVER_NONCE)
    }

    #[test]
    fn rfc7677_test_vector() {
        let server = rfc_server();
        assert_eq!(server.server_first(), SERVER_FIRST);
        assert_eq!(
            server.finish(CLIENT_FINAL.as_bytes()).unwrap(),
            SERVER_FINAL
        );
    }

    #[test]
    fn wrong_proof_is_rejected() {
        let server = rfc_server();
        let (head, proof) = CLIENT_FINAL.rsplit_once(",p=").unwrap();
        let mut proof = B64.decode(proof).unwrap();
        proof[0] ^= 1;
        let bad = format!("{head},p={}", B64.encode(proof));
        assert_eq!(server.finish(bad.as_bytes()), Err(ScramError::InvalidProof));
        // Same proof, other password's verifier.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let other = ScramServer::new(
            ClientFirst::parse(CLIENT_FIRST.as_bytes()).unwrap(),
            ScramVerifier::derive("pencils", &salt, 4096),
            SERVER_NONCE,
        );
        assert_eq!(
            other.finish(CLIENT_FINAL.as_bytes()),
            Err(ScramError::InvalidProof)
        );
    }

    #[test]
    fn verifier_text_round_trip() {
        let v = ScramVerifier::generate("pencil");
        let text = v.encode();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_eq!(ScramVerifier::decode(&text), Some(v));
        for bad in [
            "",
            "SCRAM-SHA-256$0:AAAA$AAAA:AAAA",
            "SCRAM-SHA-1$4096:AAAA$x:y",
            "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA",
        ] {
            assert_eq!(ScramVerifier::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_client_first_is_rejected() {
        let cases: &[&[u8]] = &[
            b"",
            b"n,,",
            b"n",
            b"x,,n=user,r=abc",
            b"p=tls-unique,,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,r=abc,n=user",
            b"n,,n=,r=abc",
            b"n,,n=us=2Xer,r=abc",
            b"n,,n=user,r=",
            b"n,,n=user,r=a,b",
            b"n,,n=user",
            b"n,b=x,n=user,r=abc",
            b"n,,n=user,r=abc\xff",
            b"n,,n=user,r=ab\x01c",
        ];
        for c in cases {
            assert!(
                matches!(ClientFirst::parse(c), Err(ScramError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        let long = format!("n,,n=user,r={}", "a".repeat(300));
        assert!(ClientFirst::parse(long.as_bytes()).is_err());
    }

    #[test]
    fn saslname_escapes_and_authzid() {
        let f = ClientFirst::parse(b"y,a=a=3Db=2Cc,n=a=3Db=2Cc,r=xyz,e=ext").unwrap();
        assert_eq!(f.username, "a=b,c");
        assert_eq!(f.authzid.as_deref(), Some("a=b,c"));
        assert_eq!(f.gs2_header, "y,a=a=3Db=2Cc,");
        assert_eq!(f.bare, "n=a=3Db=2Cc,r=xyz,e=ext");
    }

    #[test]
    fn malformed_client_final_is_rejected() {
        let server = rfc_server();
        let n = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let p = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let cases = [
            format!("c=biws,r={n}"),
            format!("r={n},c=biws,{p}"),
            format!("c=eSws,r={n},{p}"),
            format!("c=biws,r={n}x,{p}"),
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,{p}"),
            format!("c=biws,r={n},p=AAAA"),
            format!("c=biws,r={n},p=!!!"),
            format!("c=biws,{p}"),
            format!("c=biws,r={n},bad,{p}"),
        ];
        for c in cases {
            assert!(
                matches!(server.finish(c.as_bytes()), Err(ScramError::Malformed(_))),
                "{c}"
            );
        }
    }

    #[test]
    fn server_nonce_is_printable_and_random() {
        let a = server_nonce();
        assert_eq!(a.len(), 24);
        assert!(check_nonce(&a).is_ok());
        assert_ne!(a, server_nonce());
    }

    #[test]
    fn decoy_salt_is_stable_per_user() {
        let secret = [7u8; 32];
        let a = ScramVerifier::decoy(&secret, "Ghost@d.example");
        let b = ScramVerifier::decoy(&secret, "ghost@d.example");
        assert_eq!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
        assert_ne!(
            a.salt,
            ScramVerifier::decoy(&secret, "other@d.example").salt
        );
    }
}
