//! An authoritative DNS server on 127.0.0.1 (UDP and TCP on one port, hickory-proto messages)
//! for outbound delivery and `wharf doctor` tests. A `Zone` is built with chained calls
//! (`Zone::default().mx(..).a(..)`) or from zone-file lines as `wharf dns` prints them
//! (MX, TXT, A, AAAA, CNAME, SRV, PTR); a CNAME is followed within the zone as a real server
//! does. It can also play a validating resolver (AD bit), fail (SERVFAIL) or truncate over UDP.
//! `dkim_results` verifies a message's DKIM signatures against the keys the zone publishes.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SOA, SRV, TLSA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

pub use hickory_resolver::proto::rr::RecordType as DnsType;

#[derive(Default, Clone, Debug)]
pub struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    /// Answers carry the AD bit (as a validating resolver's would for a signed zone)...
    secure: bool,
    /// ...except for these names (an unsigned delegation).
    insecure: HashSet<String>,
    /// SERVFAIL for these questions (a bogus or unreachable zone).
    servfail: HashSet<(String, RecordType)>,
    /// Over UDP, answers for these names come back truncated (TC=1, no records): TCP needed.
    truncate: HashSet<String>,
}

/// The zone's key for a name: lower case, fully qualified.
fn key(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

/// The name label by label as written: zone data may hold characters hickory's text form
/// refuses or escapes (RFC 7208's suite has `foo:bar/baz.example.com`), which DNS carries fine.
fn name(host: &str) -> Name {
    if host == "." {
        return Name::root();
    }
    let k = key(host);
    let labels = k.trim_end_matches('.').split('.').map(str::as_bytes);
    let mut n = Name::from_labels(labels).unwrap_or_else(|e| panic!("bad DNS name {host}: {e}"));
    n.set_fqdn(true);
    n
}

/// A name's zone key: its raw labels, lower case, with the final dot (see `name`).
fn text(name: &Name) -> String {
    let mut s = String::new();
    for label in name.iter() {
        s.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        s.push('.');
    }
    if s.is_empty() { ".".to_string() } else { s }
}

/// The character-strings of a TXT rdata: `"a" "b"` → ["a", "b"] (with `\"` unescaped).
fn quoted(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                }
                '"' => break,
                other => s.push(other),
            }
        }
        out.push(s);
    }
    out
}

fn address(ip: &str) -> RData {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => RData::A(A(v4)),
        Ok(IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
        Err(e) => panic!("bad address {ip} in a test zone: {e}"),
    }
}

fn number<T: std::str::FromStr>(field: Option<&&str>, line: &str) -> T {
    field
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("bad number in zone line {line}"))
}

impl Zone {
    /// Adds one record at `owner`.
    pub fn add(&mut self, owner: &str, rd: RData) {
        self.records
            .entry((key(owner), rd.record_type()))
            .or_default()
            .push(rd);
    }

    /// Removes every record of `rtype` at `owner`.
    pub fn remove(&mut self, owner: &str, rtype: RecordType) {
        self.records.remove(&(key(owner), rtype));
    }

    /// Replaces the TXT records at `owner` that start with `prefix` by `value`.
    pub fn replace_txt(&mut self, owner: &str, prefix: &str, value: &str) {
        let list = self
            .records
            .entry((key(owner), RecordType::TXT))
            .or_default();
        list.retain(|rd| match rd {
            RData::TXT(t) => !t
                .txt_data
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<String>()
                .starts_with(prefix),
            _ => true,
        });
        list.push(RData::TXT(TXT::new(vec![value.to_string()])));
    }

    /// One zone-file line: `owner ttl IN TYPE rdata`; comments and blank lines are skipped.
    pub fn add_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            return;
        }
        let parts: Vec<&str> = line.splitn(5, ' ').collect();
        assert!(
            parts.len() == 5 && parts[2] == "IN",
            "unexpected zone line {line}"
        );
        let (owner, rtype, rdata) = (parts[0], parts[3], parts[4]);
        let f: Vec<&str> = rdata.split_whitespace().collect();
        let target = |i: usize| name(f.get(i).copied().unwrap_or("."));
        let rd = match rtype {
            "MX" => RData::MX(MX::new(number(f.first(), line), target(1))),
            "TXT" => RData::TXT(TXT::new(quoted(rdata))),
            "CNAME" => RData::CNAME(CNAME(target(0))),
            "PTR" => RData::PTR(PTR(target(0))),
            "SRV" => RData::SRV(SRV::new(
                number(f.first(), line),
                number(f.get(1), line),
                number(f.get(2), line),
                target(3),
            )),
            "A" | "AAAA" => address(f.first().copied().unwrap_or("")),
            other => panic!("record type {other} not supported by the test DNS server"),
        };
        self.add(owner, rd);
    }

    pub fn from_lines(text: &str) -> Zone {
        let mut z = Zone::default();
        for l in text.lines() {
            z.add_line(l);
        }
        z
    }

    pub fn mx(mut self, domain: &str, pref: u16, host: &str) -> Zone {
        self.add(domain, RData::MX(MX::new(pref, name(host))));
        self
    }

    /// An A or AAAA record, after the address's family.
    pub fn a(mut self, host: &str, ip: &str) -> Zone {
        self.add(host, address(ip));
        self
    }

    /// A TXT record; a value over 255 octets is split into several character-strings.
    pub fn txt(mut self, owner: &str, value: &str) -> Zone {
        let parts: Vec<String> = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.add(owner, RData::TXT(TXT::new(parts)));
        self
    }

    pub fn tlsa(mut self, owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> Zone {
        self.add(
            owner,
            RData::TLSA(TLSA::new(
                CertUsage::from(usage),
                Selector::from(selector),
                Matching::from(matching),
                data.to_vec(),
            )),
        );
        self
    }

    /// Answers as a validating resolver does for a DNSSEC-signed zone: AD=1.
    pub fn secure(mut self) -> Zone {
        self.secure = true;
        self
    }

    /// Answers for `owner` come without AD (insecure) even in a secure zone.
    pub fn insecure(mut self, owner: &str) -> Zone {
        self.insecure.insert(key(owner));
        self
    }

    pub fn servfail(mut self, owner: &str, rtype: RecordType) -> Zone {
        self.servfail.insert((key(owner), rtype));
        self
    }

    /// Over UDP, answers for `owner` are truncated, so the client must retry over TCP.
    pub fn truncate_udp(mut self, owner: &str) -> Zone {
        self.truncate.insert(key(owner));
        self
    }

    fn answer(&self, query: &[u8], udp: bool) -> Option<Vec<u8>> {
        let req = Message::from_vec(query).ok()?;
        let q = req.queries.first()?.clone();
        let qname = text(q.name());
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.authoritative = true;
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_query(q.clone());
        resp.metadata.authentic_data = self.secure && !self.insecure.contains(&qname);
        if udp && self.truncate.contains(&qname) {
            resp.metadata.truncation = true;
            return resp.to_vec().ok();
        }
        if self.servfail.contains(&(qname.clone(), q.query_type())) {
            resp.metadata.response_code = ResponseCode::ServFail;
            resp.metadata.authentic_data = false;
            return resp.to_vec().ok();
        }
        let mut owner = qname.clone();
        let mut answered = false;
        // Follow CNAMEs inside the zone (a few hops at most).
        for _ in 0..4 {
            if let Some(rds) = self.records.get(&(owner.clone(), q.query_type())) {
                for rd in rds {
                    resp.add_answer(Record::from_rdata(name(&owner), 60, rd.clone()));
                }
                answered = true;
                break;
            }
            match self.records.get(&(owner.clone(), RecordType::CNAME)) {
                Some(c) if q.query_type() != RecordType::CNAME => {
                    let Some(RData::CNAME(target)) = c.first() else {
                        break;
                    };
                    resp.add_answer(Record::from_rdata(name(&owner), 60, c[0].clone()));
                    answered = true;
                    owner = text(&target.0);
                }
                _ => break,
            }
        }
        if !answered {
            if !self.records.keys().any(|(n, _)| *n == qname) {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            let soa = SOA::new(name("ns.test"), name("admin.test"), 1, 60, 60, 60, 60);
            resp.add_authority(Record::from_rdata(name("test"), 60, RData::SOA(soa)));
        }
        resp.to_vec().ok()
    }
}

/// Serves `zone` on 127.0.0.1 over UDP and TCP on the same port, until the runtime ends.
pub async fn start_dns(zone: Zone) -> SocketAddr {
    let zone = Arc::new(zone);
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP port on 127.0.0.1");
        let addr = udp.local_addr().expect("bound UDP address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        tokio::spawn(serve_udp(udp, zone.clone()));
        tokio::spawn(serve_tcp(tcp, zone));
        return addr;
    }
    panic!("no free UDP+TCP port pair for the test DNS server");
}

async fn serve_udp(udp: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0u8; 4096];
    while let Ok((n, from)) = udp.recv_from(&mut buf).await {
        if let Some(out) = zone.answer(&buf[..n], true) {
            let _ = udp.send_to(&out, from).await;
        }
    }
}

async fn serve_tcp(tcp: TcpListener, zone: Arc<Zone>) {
    while let Ok((mut s, _)) = tcp.accept().await {
        let zone = zone.clone();
        tokio::spawn(async move {
            // RFC 1035 §4.2.2: each message is preceded by its length in two octets.
            loop {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut q).await.is_err() {
                    return;
                }
                let Some(out) = zone.answer(&q, false) else {
                    return;
                };
                let Ok(n) = u16::try_from(out.len()) else {
                    return;
                };
                let mut framed = n.to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                if s.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The DKIM results a receiver gets for `raw`, with the keys published on the test DNS server
/// at `dns`.
pub async fn dkim_results(dns: SocketAddr, raw: &[u8]) -> Vec<mail_auth::DkimResult> {
    use mail_auth::hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    let mut udp = ConnectionConfig::udp();
    udp.port = dns.port();
    let auth = mail_auth::MessageAuthenticator::new(
        ResolverConfig::from_name_servers(vec![NameServerConfig::new(dns.ip(), true, vec![udp])]),
        ResolverOpts::default(),
    )
    .expect("a resolver for the test DNS server");
    let Some(msg) = mail_auth::AuthenticatedMessage::parse(raw) else {
        panic!("not a message: {}", String::from_utf8_lossy(raw));
    };
    auth.verify_dkim(&msg)
        .await
        .iter()
        .map(|r| r.result().clone())
        .collect()
}
