//! SPF TXT records from anyone's DNS through Wharf's RFC 7208 parser, and their macro strings
//! through the expander: never a panic, and no expansion past its bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wharf_inbound::spf::parse_record(data);
    let text = String::from_utf8_lossy(data);
    let _ = wharf_inbound::spf::domain_is_checkable(&text);
    // The bytes as a domain-spec and as explanation text, expanded with the bytes as identity.
    for explain in [false, true] {
        if let Ok(ms) = wharf_inbound::spf::MacroString::parse(&text, explain) {
            let vars = wharf_inbound::spf::Vars {
                sender: &text,
                local: &text,
                sender_domain: &text,
                domain: &text,
                ip: std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                helo: &text,
                receiver: "mx.example.org",
                validated: "unknown",
                now: 0,
            };
            if let Some(out) = ms.expand(&vars) {
                assert!(out.len() <= wharf_inbound::spf::MAX_EXPANSION);
            }
        }
    }
});
