//! SPF TXT records from anyone's DNS, checked against the RFC 7208 syntax: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|record: &[u8]| {
    let text = String::from_utf8_lossy(record);
    if wharf_inbound::spf_syntax::is_spf(&text) {
        let _ = wharf_inbound::spf_syntax::check_record(&text);
    }
    let _ = wharf_inbound::spf_syntax::domain_is_checkable(&text);
});
