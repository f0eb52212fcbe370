//! DANE for outbound SMTP (RFC 7672). Owns three things:
//!
//! - the DNSSEC-aware lookup: a query of our own (hickory-proto messages, UDP with TCP fallback on
//!   truncation) to the configured resolver with the DO and AD bits set, because the stub
//!   resolver hides the AD bit. As with Postfix's `smtp_dns_support_level = dnssec`, the
//!   configured resolver is trusted to validate (a local unbound at 127.0.0.1): an answer is
//!   "secure" exactly when it comes back with AD=1;
//! - what a TLSA RRset means for one MX host (`HostDane`): nothing, TLS with authentication,
//!   TLS without authentication (only unusable records, RFC 7672 §2.2), or do not use the host;
//! - matching a presented certificate chain against TLSA records: DANE-EE (usage 3) by the leaf
//!   alone, with no name or expiry check (RFC 7672 §3.1.1), and DANE-TA (usage 2) by a chain
//!   from the leaf to a presented certificate the TLSA names, with the leaf's name checked
//!   against the MX host or the next-hop domain (§3.1.2). PKIX usages 0/1 are unusable for SMTP
//!   (§3.1.3) and ignored.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use sha2::{Digest, Sha256, Sha512};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// One TLSA record (RFC 6698 §2.1), kept as numbers so unknown values stay visible in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    pub fn new(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    /// Usable for SMTP (RFC 7672 §3.1): DANE-TA or DANE-EE, a known selector and matching
    /// type, and a digest of the right length (RFC 7671 §10.1: malformed records are unusable).
    pub fn usable(&self) -> bool {
        let len_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, 2 | 3) && matches!(self.selector, 0 | 1) && len_ok
    }

    /// Whether this record's association data matches `cert` (DER). A certificate x509-parser
    /// cannot read simply does not match under selector 1.
    pub fn matches(&self, cert: &[u8]) -> bool {
        let Some(selected) = select(cert, self.selector) else {
            return false;
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => Sha256::digest(selected).as_slice() == self.data.as_slice(),
            2 => Sha512::digest(selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }

    fn from_rdata(rd: &RData) -> Option<Tlsa> {
        match rd {
            RData::TLSA(t) => Some(Tlsa {
                usage: t.cert_usage.into(),
                selector: t.selector.into(),
                matching: t.matching.into(),
                data: t.cert_data.clone(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.usage, self.selector, self.matching)
    }
}

/// The part of a certificate a TLSA selector names: the whole DER (0) or its
/// SubjectPublicKeyInfo (1).
pub fn select(cert: &[u8], selector: u8) -> Option<&[u8]> {
    match selector {
        0 => Some(cert),
        1 => {
            let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
            Some(parsed.tbs_certificate.subject_pki.raw)
        }
        _ => None,
    }
}

/// `spki sha256 <hex>, cert sha256 <hex>` of a certificate: what an admin compares with the
/// published TLSA when a match fails.
pub fn fingerprints(cert: &[u8]) -> String {
    let spki = select(cert, 1)
        .map(|s| hex(&Sha256::digest(s)))
        .unwrap_or_else(|| "unparsable".into());
    format!(
        "spki sha256 {spki}, cert sha256 {}",
        hex(&Sha256::digest(cert))
    )
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Authentication requirements DANE puts on one MX host, carried by the hop to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanePolicy {
    /// The MX host (for logs and the DANE-TA name check).
    pub host: String,
    /// Names the leaf may carry under DANE-TA: the MX host, then the next-hop domain
    /// (RFC 7672 §3.2.2).
    pub names: Vec<String>,
    /// Usable records only (never empty).
    pub records: Vec<Tlsa>,
}

impl DanePolicy {
    /// `3 1 1, 2 0 1` — the records' parameters, for log lines.
    pub fn summary(&self) -> String {
        self.records
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the TLSA lookup says about one MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDane {
    /// No TLSA records, or the answer is not DNSSEC-secure: DANE does not apply.
    None,
    /// A secure RRset with usable records: TLS is mandatory and must authenticate by them.
    Authenticate(Vec<Tlsa>),
    /// A secure RRset whose records are all unusable: TLS is still mandatory, without
    /// authentication (RFC 7672 §2.2).
    EncryptOnly(Vec<Tlsa>),
    /// The lookup failed (SERVFAIL, timeout, bogus) although the MX lookup was secure: the host
    /// must not be used, since a downgrade is exactly what an attacker would cause.
    Indeterminate(String),
}

impl HostDane {
    /// The outcome of a TLSA answer.
    pub fn from_answer(answer: &DnsAnswer) -> HostDane {
        match answer.rcode {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            other => return HostDane::Indeterminate(format!("TLSA lookup answered {other}")),
        }
        if !answer.authentic {
            return HostDane::None;
        }
        let all: Vec<Tlsa> = answer
            .records
            .iter()
            .filter_map(|r| Tlsa::from_rdata(&r.data))
            .collect();
        if all.is_empty() {
            return HostDane::None;
        }
        let usable: Vec<Tlsa> = all.iter().filter(|t| t.usable()).cloned().collect();
        if usable.is_empty() {
            HostDane::EncryptOnly(all)
        } else {
            HostDane::Authenticate(usable)
        }
    }
}

/// The parts of a DNS response DANE needs.
#[derive(Debug, Clone)]
pub struct DnsAnswer {
    pub rcode: ResponseCode,
    /// AD bit: the (trusted, validating) resolver vouches for the answer.
    pub authentic: bool,
    pub records: Vec<Record>,
}

/// Asks `servers` in turn (each twice) for `name`/`rtype` with DNSSEC OK and AD set; the first
/// well-formed response wins, whatever its response code.
pub async fn query(
    servers: &[SocketAddr],
    name: &str,
    rtype: RecordType,
    timeout: Duration,
) -> Result<DnsAnswer, String> {
    let qname = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    let mut last = String::from("no nameserver configured");
    for server in servers {
        for _ in 0..2 {
            match query_one(*server, &qname, rtype, timeout).await {
                Ok(a) => return Ok(a),
                Err(e) => last = format!("{server}: {e}"),
            }
        }
    }
    Err(last)
}

fn request(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, String> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    // RFC 6840 §5.7: AD in a query asks for the AD bit in the answer even without DO; DO as
    // well, since some resolvers only set AD for DO queries.
    m.metadata.authentic_data = true;
    m.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    m.set_edns(edns);
    m.to_vec().map_err(|e| format!("encoding query: {e}"))
}

/// Accepts `buf` as the response to our query, or says why not (then the caller keeps waiting:
/// a spoofed or stray datagram must not end the lookup).
pub fn accept_response(
    buf: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
) -> Result<Message, String> {
    let m = Message::from_vec(buf).map_err(|e| format!("malformed response: {e}"))?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return Err("response id mismatch".into());
    }
    let echoed = m
        .queries
        .first()
        .is_some_and(|q| q.name() == name && q.query_type() == rtype);
    if !echoed {
        return Err("response to another question".into());
    }
    Ok(m)
}

fn answer_of(m: Message) -> DnsAnswer {
    DnsAnswer {
        rcode: m.metadata.response_code,
        authentic: m.metadata.authentic_data,
        records: m.answers,
    }
}

async fn query_one(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<DnsAnswer, String> {
    let id: u16 = rand::random();
    let req = request(id, name, rtype)?;
    let bind = match (server.is_ipv4(), server.ip().is_loopback()) {
        (true, true) => "127.0.0.1:0",
        (true, false) => "0.0.0.0:0",
        (false, true) => "[::1]:0",
        (false, false) => "[::]:0",
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(&req).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(n)) => n,
        };
        let Some(chunk) = buf.get(..n) else { continue };
        match accept_response(chunk, id, name, rtype) {
            Ok(m) if m.metadata.truncation => {
                return query_tcp(server, name, rtype, deadline).await;
            }
            Ok(m) => return Ok(answer_of(m)),
            Err(e) => tracing::debug!(%server, error = %e, "ignoring DNS datagram"),
        }
    }
}

async fn query_tcp(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    deadline: tokio::time::Instant,
) -> Result<DnsAnswer, String> {
    let id: u16 = rand::random();
    let req = request(id, name, rtype)?;
    let exchange = async {
        let mut s = TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let len = u16::try_from(req.len()).map_err(|_| "query too long".to_string())?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&req);
        s.write_all(&framed).await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        accept_response(&body, id, name, rtype).map(answer_of)
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => Err("timed out (TCP)".into()),
        Ok(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::TLSA;
    use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};

    fn cert() -> Vec<u8> {
        rcgen::generate_simple_self_signed(vec!["mx.example".to_string()])
            .unwrap()
            .cert
            .der()
            .to_vec()
    }

    #[test]
    fn matching_by_selector_and_type() {
        let c = cert();
        let spki = select(&c, 1).unwrap().to_vec();
        assert!(spki.len() < c.len() && spki[0] == 0x30);
        for (sel, part) in [(0u8, c.clone()), (1, spki.clone())] {
            assert!(Tlsa::new(3, sel, 0, part.clone()).matches(&c));
            assert!(Tlsa::new(3, sel, 1, Sha256::digest(&part).to_vec()).matches(&c));
            assert!(Tlsa::new(3, sel, 2, Sha512::digest(&part).to_vec()).matches(&c));
            let mut wrong = Sha256::digest(&part).to_vec();
            wrong[0] ^= 1;
            assert!(!Tlsa::new(3, sel, 1, wrong).matches(&c));
        }
        // A full-cert digest does not match under the SPKI selector.
        assert!(!Tlsa::new(3, 1, 1, Sha256::digest(&c).to_vec()).matches(&c));
        assert!(!Tlsa::new(3, 1, 1, Sha256::digest(&spki).to_vec()).matches(&cert()));
        assert!(!Tlsa::new(3, 1, 1, Sha256::digest(&spki).to_vec()).matches(b"junk"));
        assert!(fingerprints(&c).starts_with("spki sha256 "));
    }

    #[test]
    fn usability() {
        let d32 = vec![0u8; 32];
        assert!(Tlsa::new(3, 1, 1, d32.clone()).usable());
        assert!(Tlsa::new(2, 0, 1, d32.clone()).usable());
        assert!(Tlsa::new(3, 0, 0, vec![1]).usable());
        assert!(
            !Tlsa::new(1, 1, 1, d32.clone()).usable(),
            "PKIX-EE is unusable for SMTP"
        );
        assert!(
            !Tlsa::new(0, 0, 1, d32.clone()).usable(),
            "PKIX-TA is unusable for SMTP"
        );
        assert!(!Tlsa::new(3, 2, 1, d32.clone()).usable());
        assert!(!Tlsa::new(3, 1, 3, d32.clone()).usable());
        assert!(!Tlsa::new(3, 1, 2, d32).usable(), "SHA-512 needs 64 bytes");
        assert!(!Tlsa::new(3, 1, 1, vec![0u8; 31]).usable());
    }

    fn answer(rcode: ResponseCode, ad: bool, tlsa: &[(u8, u8, u8, usize)]) -> DnsAnswer {
        let name = Name::from_ascii("_25._tcp.mx.example.").unwrap();
        DnsAnswer {
            rcode,
            authentic: ad,
            records: tlsa
                .iter()
                .map(|&(u, s, m, n)| {
                    Record::from_rdata(
                        name.clone(),
                        60,
                        RData::TLSA(TLSA::new(
                            CertUsage::from(u),
                            Selector::from(s),
                            Matching::from(m),
                            vec![7; n],
                        )),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn host_outcomes() {
        use ResponseCode::*;
        let secure = answer(NoError, true, &[(3, 1, 1, 32), (1, 1, 1, 32)]);
        match HostDane::from_answer(&secure) {
            HostDane::Authenticate(r) => assert_eq!(r, vec![Tlsa::new(3, 1, 1, vec![7; 32])]),
            other => panic!("{other:?}"),
        }
        let insecure = answer(NoError, false, &[(3, 1, 1, 32)]);
        assert_eq!(HostDane::from_answer(&insecure), HostDane::None);
        assert_eq!(
            HostDane::from_answer(&answer(NXDomain, true, &[])),
            HostDane::None
        );
        assert!(matches!(
            HostDane::from_answer(&answer(NoError, true, &[(1, 1, 1, 32), (3, 1, 1, 5)])),
            HostDane::EncryptOnly(r) if r.len() == 2
        ));
        assert!(matches!(
            HostDane::from_answer(&answer(ServFail, false, &[])),
            HostDane::Indeterminate(_)
        ));
        assert!(matches!(
            HostDane::from_answer(&answer(Refused, true, &[])),
            HostDane::Indeterminate(_)
        ));
    }

    #[test]
    fn responses_are_checked_against_the_question() {
        let name = Name::from_ascii("_25._tcp.mx.example.").unwrap();
        let req = request(77, &name, RecordType::TLSA).unwrap();
        let q = Message::from_vec(&req).unwrap();
        assert!(q.metadata.authentic_data && q.metadata.recursion_desired);
        assert!(q.edns.as_ref().unwrap().flags().dnssec_ok);
        // Our own query is not a response.
        assert!(accept_response(&req, 77, &name, RecordType::TLSA).is_err());
        let mut resp = Message::response(77, q.metadata.op_code);
        resp.add_query(q.queries[0].clone());
        resp.metadata.authentic_data = true;
        let bytes = resp.to_vec().unwrap();
        assert!(accept_response(&bytes, 77, &name, RecordType::TLSA).is_ok());
        assert!(accept_response(&bytes, 78, &name, RecordType::TLSA).is_err());
        assert!(accept_response(&bytes, 77, &name, RecordType::A).is_err());
        let other = Name::from_ascii("_25._tcp.evil.example.").unwrap();
        assert!(accept_response(&bytes, 77, &other, RecordType::TLSA).is_err());
    }

    proptest::proptest! {
        /// Arbitrary bytes as a DNS response or a certificate never panic, and a response is
        /// only accepted for the question it echoes.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                                       u in 0u8..5, s in 0u8..3, m in 0u8..4) {
            let name = Name::from_ascii("_25._tcp.mx.example.").unwrap();
            if let Ok(msg) = accept_response(&bytes, 1, &name, RecordType::TLSA) {
                proptest::prop_assert_eq!(msg.metadata.id, 1);
                let _ = HostDane::from_answer(&answer_of(msg));
            }
            let t = Tlsa::new(u, s, m, bytes.clone());
            let _ = t.usable();
            let _ = t.matches(&bytes);
            let _ = fingerprints(&bytes);
        }
    }
}
