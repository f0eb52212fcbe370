//! PROXY protocol version 2 (the binary header a TCP load balancer puts in
//! front of a relayed connection so the server learns the real client).
//!
//! [`parse_proxy_v2`] is a pure function over bytes (the fuzz target);
//! [`read_proxy_header`] reads exactly one header from a stream without
//! consuming a byte of what follows it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12-byte magic every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part: signature, version/command, family/transport, length.
pub const FIXED_LEN: usize = 16;
/// Largest possible header (the length field is 16 bits).
pub const MAX_LEN: usize = FIXED_LEN + u16::MAX as usize;

const INET_ADDR_LEN: usize = 12;
const INET6_ADDR_LEN: usize = 36;
const UNIX_ADDR_LEN: usize = 216;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyCommand {
    /// The proxy's own connection (health check): use the socket's addresses.
    Local,
    /// A relayed connection: the header carries the client's addresses.
    Proxy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyAddresses {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub kind: u8,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    pub command: ProxyCommand,
    /// `None` for LOCAL, for the UNSPEC family and for UNIX sockets: the
    /// receiver then keeps the addresses of the TCP connection itself.
    pub addresses: Option<ProxyAddresses>,
    pub tlvs: Vec<Tlv>,
}

impl ProxyHeader {
    /// The client address to use: the relayed source for PROXY over TCP/IP,
    /// otherwise `socket_peer`.
    pub fn client(&self, socket_peer: SocketAddr) -> SocketAddr {
        match (self.command, self.addresses) {
            (ProxyCommand::Proxy, Some(a)) => a.source,
            _ => socket_peer,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyParse {
    /// More input is needed: the header is `total` bytes long in all (16
    /// while the length field has not arrived yet).
    Incomplete { total: usize },
    /// A full header; `consumed` bytes of input belong to it.
    Complete {
        header: ProxyHeader,
        consumed: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("PROXY v2: bad signature")]
    BadSignature,
    #[error("PROXY v2: unsupported version {0}")]
    BadVersion(u8),
    #[error("PROXY v2: unknown command {0}")]
    BadCommand(u8),
    #[error("PROXY v2: unknown address family {0}")]
    BadFamily(u8),
    #[error("PROXY v2: unsupported transport {0} (only STREAM)")]
    BadTransport(u8),
    #[error("PROXY v2: address block of {got} bytes, family needs {need}")]
    AddressTooShort { need: usize, got: usize },
    #[error("PROXY v2: malformed TLV at offset {0}")]
    BadTlv(usize),
}

/// Parses one PROXY v2 header at the start of `input`. Never panics and
/// never looks past the length the header declares.
pub fn parse_proxy_v2(input: &[u8]) -> Result<ProxyParse, ProxyError> {
    let sig_seen = input.len().min(SIGNATURE.len());
    if input[..sig_seen] != SIGNATURE[..sig_seen] {
        return Err(ProxyError::BadSignature);
    }
    if input.len() < FIXED_LEN {
        // Reject a bad version/command early when that byte is already here.
        if let Some(&vc) = input.get(12) {
            check_ver_cmd(vc)?;
        }
        return Ok(ProxyParse::Incomplete { total: FIXED_LEN });
    }
    let command = check_ver_cmd(input[12])?;
    let fam = input[13];
    let len = u16::from_be_bytes([input[14], input[15]]) as usize;
    let total = FIXED_LEN + len;
    if input.len() < total {
        return Ok(ProxyParse::Incomplete { total });
    }
    let body = &input[FIXED_LEN..total];

    let family = fam >> 4;
    let transport = fam & 0x0f;
    let addr_len = match family {
        0 => 0,
        1 => INET_ADDR_LEN,
        2 => INET6_ADDR_LEN,
        3 => UNIX_ADDR_LEN,
        f => return Err(ProxyError::BadFamily(f)),
    };
    // UNSPEC transport goes with UNSPEC family (LOCAL); otherwise only TCP.
    match (family, transport) {
        (0, 0) | (_, 1) => {}
        (_, t) => return Err(ProxyError::BadTransport(t)),
    }
    if body.len() < addr_len {
        return Err(ProxyError::AddressTooShort {
            need: addr_len,
            got: body.len(),
        });
    }
    let a = &body[..addr_len];
    let addresses = match family {
        1 => {
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            let sport = u16::from_be_bytes([a[8], a[9]]);
            let dport = u16::from_be_bytes([a[10], a[11]]);
            Some(ProxyAddresses {
                source: SocketAddr::new(IpAddr::V4(src), sport),
                destination: SocketAddr::new(IpAddr::V4(dst), dport),
            })
        }
        2 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&a[..16]);
            d.copy_from_slice(&a[16..32]);
            let sport = u16::from_be_bytes([a[32], a[33]]);
            let dport = u16::from_be_bytes([a[34], a[35]]);
            Some(ProxyAddresses {
                source: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(s)), sport),
                destination: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(d)), dport),
            })
        }
        _ => None,
    };

    let mut tlvs = Vec::new();
    let mut off = addr_len;
    while off < body.len() {
        let rest = &body[off..];
        if rest.len() < 3 {
            return Err(ProxyError::BadTlv(FIXED_LEN + off));
        }
        let vlen = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let Some(value) = rest.get(3..3 + vlen) else {
            return Err(ProxyError::BadTlv(FIXED_LEN + off));
        };
        tlvs.push(Tlv {
            kind: rest[0],
            value: value.to_vec(),
        });
        off += 3 + vlen;
    }

    Ok(ProxyParse::Complete {
        header: ProxyHeader {
            command,
            addresses: if command == ProxyCommand::Local {
                None
            } else {
                addresses
            },
            tlvs,
        },
        consumed: total,
    })
}

fn check_ver_cmd(vc: u8) -> Result<ProxyCommand, ProxyError> {
    if vc >> 4 != 2 {
        return Err(ProxyError::BadVersion(vc >> 4));
    }
    match vc & 0x0f {
        0 => Ok(ProxyCommand::Local),
        1 => Ok(ProxyCommand::Proxy),
        c => Err(ProxyError::BadCommand(c)),
    }
}

/// Encodes a header (what a load balancer sends). Mixed-family address
/// pairs are encoded as IPv6 with IPv4-mapped addresses. TLVs whose value
/// exceeds what the length field can carry are dropped.
pub fn encode_proxy_v2(header: &ProxyHeader) -> Vec<u8> {
    let mut body = Vec::new();
    let fam = match (header.command, header.addresses) {
        (ProxyCommand::Proxy, Some(a)) => match (a.source, a.destination) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                body.extend_from_slice(&s.ip().octets());
                body.extend_from_slice(&d.ip().octets());
                body.extend_from_slice(&s.port().to_be_bytes());
                body.extend_from_slice(&d.port().to_be_bytes());
                0x11
            }
            (s, d) => {
                body.extend_from_slice(&to_v6(s.ip()).octets());
                body.extend_from_slice(&to_v6(d.ip()).octets());
                body.extend_from_slice(&s.port().to_be_bytes());
                body.extend_from_slice(&d.port().to_be_bytes());
                0x21
            }
        },
        _ => 0x00,
    };
    for t in &header.tlvs {
        if t.value.len() > u16::MAX as usize || body.len() + 3 + t.value.len() > u16::MAX as usize {
            continue;
        }
        body.push(t.kind);
        body.extend_from_slice(&(t.value.len() as u16).to_be_bytes());
        body.extend_from_slice(&t.value);
    }
    let cmd = match header.command {
        ProxyCommand::Local => 0x20,
        ProxyCommand::Proxy => 0x21,
    };
    let mut out = Vec::with_capacity(FIXED_LEN + body.len());
    out.extend_from_slice(&SIGNATURE);
    out.push(cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Why reading a PROXY header failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Malformed(#[from] ProxyError),
}

/// Reads exactly one PROXY v2 header from `stream` (the fixed part, then the
/// declared length), so the bytes after it stay unread for TLS or the
/// protocol. Memory is bounded by [`MAX_LEN`].
pub async fn read_proxy_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<ProxyHeader, ProxyReadError> {
    let mut buf = vec![0u8; FIXED_LEN];
    // Read the signature first so garbage is refused after 12 bytes instead
    // of waiting for a length that will never make sense.
    stream.read_exact(&mut buf[..SIGNATURE.len()]).await?;
    if buf[..SIGNATURE.len()] != SIGNATURE {
        return Err(ProxyError::BadSignature.into());
    }
    stream.read_exact(&mut buf[SIGNATURE.len()..]).await?;
    loop {
        match parse_proxy_v2(&buf)? {
            ProxyParse::Complete { header, .. } => return Ok(header),
            ProxyParse::Incomplete { total } => {
                let have = buf.len();
                if total <= have {
                    // Cannot happen for a consistent parser; refuse rather than spin.
                    return Err(ProxyError::BadTlv(have).into());
                }
                buf.resize(total, 0);
                stream.read_exact(&mut buf[have..]).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str, d: &str) -> ProxyHeader {
        ProxyHeader {
            command: ProxyCommand::Proxy,
            addresses: Some(ProxyAddresses {
                source: s.parse().unwrap(),
                destination: d.parse().unwrap(),
            }),
            tlvs: vec![],
        }
    }

    #[test]
    fn tcp4_known_bytes() {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
        b.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0xd4, 0x31, 0x00, 0x19]);
        b.extend_from_slice(b"EHLO x\r\n");
        match parse_proxy_v2(&b).unwrap() {
            ProxyParse::Complete { header, consumed } => {
                assert_eq!(consumed, 28);
                assert_eq!(header, v4("192.0.2.7:54321", "198.51.100.1:25"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tcp6_roundtrip() {
        let h = ProxyHeader {
            command: ProxyCommand::Proxy,
            addresses: Some(ProxyAddresses {
                source: "[2001:db8::1]:40000".parse().unwrap(),
                destination: "[2001:db8::2]:993".parse().unwrap(),
            }),
            tlvs: vec![Tlv {
                kind: 0x05,
                value: b"unique".to_vec(),
            }],
        };
        let enc = encode_proxy_v2(&h);
        assert_eq!(enc[13], 0x21);
        assert_eq!(
            parse_proxy_v2(&enc).unwrap(),
            ProxyParse::Complete {
                header: h,
                consumed: enc.len()
            }
        );
    }

    #[test]
    fn local_ignores_addresses() {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x20, 0x11, 0x00, 0x0c]);
        b.extend_from_slice(&[1; 12]);
        let ProxyParse::Complete { header, .. } = parse_proxy_v2(&b).unwrap() else {
            panic!()
        };
        assert_eq!(header.command, ProxyCommand::Local);
        assert_eq!(header.addresses, None);
        let peer: SocketAddr = "10.0.0.1:5".parse().unwrap();
        assert_eq!(header.client(peer), peer);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            parse_proxy_v2(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(ProxyError::BadSignature)
        );
        assert_eq!(parse_proxy_v2(b"\r\nX"), Err(ProxyError::BadSignature));
        let mut b = SIGNATURE.to_vec();
        b.push(0x11);
        assert_eq!(parse_proxy_v2(&b), Err(ProxyError::BadVersion(1)));
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x22, 0x11, 0, 0]);
        assert_eq!(parse_proxy_v2(&b), Err(ProxyError::BadCommand(2)));
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x41, 0, 0]);
        assert_eq!(parse_proxy_v2(&b), Err(ProxyError::BadFamily(4)));
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x12, 0, 12]);
        b.extend_from_slice(&[0; 12]);
        assert_eq!(parse_proxy_v2(&b), Err(ProxyError::BadTransport(2)));
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x21, 0, 12]);
        b.extend_from_slice(&[0; 12]);
        assert_eq!(
            parse_proxy_v2(&b),
            Err(ProxyError::AddressTooShort { need: 36, got: 12 })
        );
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x11, 0, 14]);
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&[1, 0]);
        assert_eq!(parse_proxy_v2(&b), Err(ProxyError::BadTlv(28)));
    }

    #[test]
    fn incomplete() {
        assert_eq!(
            parse_proxy_v2(&SIGNATURE[..5]),
            Ok(ProxyParse::Incomplete { total: 16 })
        );
        let enc = encode_proxy_v2(&v4("1.2.3.4:1", "5.6.7.8:2"));
        assert_eq!(
            parse_proxy_v2(&enc[..20]),
            Ok(ProxyParse::Incomplete { total: 28 })
        );
    }

    #[tokio::test]
    async fn reader_leaves_payload() {
        let mut bytes = encode_proxy_v2(&v4("1.2.3.4:1000", "5.6.7.8:25"));
        bytes.extend_from_slice(b"payload");
        let mut r = &bytes[..];
        let h = read_proxy_header(&mut r).await.unwrap();
        assert_eq!(
            h.client("9.9.9.9:9".parse().unwrap()).to_string(),
            "1.2.3.4:1000"
        );
        assert_eq!(r, b"payload");

        let mut r: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            read_proxy_header(&mut r).await,
            Err(ProxyReadError::Malformed(ProxyError::BadSignature))
        ));
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::from((Ipv6Addr::from(ip), p))),
        ]
    }

    fn arb_header() -> impl Strategy<Value = ProxyHeader> {
        let tlvs = proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(kind, value)| Tlv { kind, value }),
            0..4,
        );
        (any::<bool>(), arb_addr(), arb_addr(), tlvs).prop_map(|(local, s, d, tlvs)| {
            // Keep families consistent so the round trip is exact.
            let (s, d) = match (s, d) {
                (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => {
                    (s, d)
                }
                (SocketAddr::V4(_), SocketAddr::V6(_)) => (s, SocketAddr::new(s.ip(), d.port())),
                (SocketAddr::V6(_), SocketAddr::V4(_)) => (s, SocketAddr::new(s.ip(), d.port())),
            };
            ProxyHeader {
                command: if local {
                    ProxyCommand::Local
                } else {
                    ProxyCommand::Proxy
                },
                addresses: if local {
                    None
                } else {
                    Some(ProxyAddresses {
                        source: s,
                        destination: d,
                    })
                },
                tlvs,
            }
        })
    }

    proptest! {
        #[test]
        fn roundtrip(h in arb_header(), trailer in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut enc = encode_proxy_v2(&h);
            let len = enc.len();
            enc.extend_from_slice(&trailer);
            prop_assert_eq!(
                parse_proxy_v2(&enc),
                Ok(ProxyParse::Complete { header: h, consumed: len })
            );
        }

        #[test]
        fn every_prefix_is_incomplete(h in arb_header()) {
            let enc = encode_proxy_v2(&h);
            for cut in 0..enc.len() {
                match parse_proxy_v2(&enc[..cut]) {
                    Ok(ProxyParse::Incomplete { total }) => {
                        prop_assert!(total > cut);
                        prop_assert!(total <= enc.len());
                    }
                    other => prop_assert!(false, "cut {}: {:?}", cut, other),
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(ProxyParse::Complete { consumed, .. }) = parse_proxy_v2(&bytes) {
                prop_assert!(consumed <= bytes.len());
            }
        }

        #[test]
        fn mutated_headers_never_panic(h in arb_header(), idx in any::<usize>(), val in any::<u8>()) {
            let mut enc = encode_proxy_v2(&h);
            let i = idx % enc.len();
            enc[i] = val;
            match parse_proxy_v2(&enc) {
                Ok(ProxyParse::Complete { consumed, .. }) => prop_assert!(consumed <= enc.len()),
                Ok(ProxyParse::Incomplete { total }) => prop_assert!(total > enc.len()),
                Err(_) => {}
            }
            // A broken signature byte is always refused.
            if i < SIGNATURE.len() && val != SIGNATURE[i] {
                prop_assert_eq!(parse_proxy_v2(&enc), Err(ProxyError::BadSignature));
            }
        }
    }
}
