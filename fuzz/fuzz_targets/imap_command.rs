//! IMAP command lines (with any literals already framed in) straight from the network; the literal
//! framer sees every raw line before that.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = wharf_imap::syntax::parser::literal_at_end(input);
    let _ = wharf_imap::parse_command(input);
    // CATENATE's IMAP URLs (RFC 5092) arrive as strings of such commands.
    if let Ok(url) = std::str::from_utf8(input) {
        let _ = wharf_imap::syntax::parse_imap_url(url);
    }
});
