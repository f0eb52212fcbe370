//! An authoritative DNS server on loopback for the binary's tests (UDP and TCP, hickory-proto
//! messages), loaded from zone-file lines such as `wharf dns` prints: MX, TXT, A, AAAA, CNAME,
//! SRV and PTR. A CNAME is followed within the zone, as a real server does.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SOA, SRV, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Default, Clone, Debug)]
pub struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
}

fn key(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

fn name(host: &str) -> Name {
    if host == "." {
        Name::root()
    } else {
        Name::from_ascii(key(host)).unwrap()
    }
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

impl Zone {
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
        let rd = match rtype {
            "MX" => RData::MX(MX::new(f[0].parse().unwrap(), name(f[1]))),
            "TXT" => RData::TXT(TXT::new(quoted(rdata))),
            "CNAME" => RData::CNAME(CNAME(name(f[0]))),
            "PTR" => RData::PTR(PTR(name(f[0]))),
            "SRV" => RData::SRV(SRV::new(
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                name(f[3]),
            )),
            "A" | "AAAA" => match f[0].parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            },
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

    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(query).ok()?;
        let q = req.queries.first()?.clone();
        let qname = q.name().to_ascii().to_ascii_lowercase();
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.authoritative = true;
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_query(q.clone());
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
                    let RData::CNAME(target) = &c[0] else { break };
                    resp.add_answer(Record::from_rdata(name(&owner), 60, c[0].clone()));
                    answered = true;
                    owner = target.0.to_ascii().to_ascii_lowercase();
                }
                _ => break,
            }
        }
        if !answered {
            if !self.records.keys().any(|(n, _)| *n == qname) {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            let soa = SOA::new(
                Name::from_ascii("ns.test.").unwrap(),
                Name::from_ascii("admin.test.").unwrap(),
                1,
                60,
                60,
                60,
                60,
            );
            resp.add_authority(Record::from_rdata(
                Name::from_ascii("test.").unwrap(),
                60,
                RData::SOA(soa),
            ));
        }
        resp.to_vec().ok()
    }
}

/// Serves `zone` on 127.0.0.1 over UDP and TCP on the same port, until the runtime ends.
pub async fn start_dns(zone: Zone) -> SocketAddr {
    let zone = Arc::new(zone);
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        let z = zone.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(out) = z.answer(&buf[..n]) {
                    let _ = udp.send_to(&out, from).await;
                }
            }
        });
        let z = zone.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    return;
                };
                let z = z.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        let Some(out) = z.answer(&q) else { return };
                        let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&out);
                        if s.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        return addr;
    }
    panic!("no free port pair for DNS");
}
