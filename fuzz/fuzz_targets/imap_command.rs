//! IMAP command lines (with any literals already framed in) straight from the network; the literal
//! framer sees every raw line before that.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = wharf_imap::syntax::parser::literal_at_end(input);
    if let Ok(cmd) = wharf_imap::parse_command(input) {
        // METADATA entry names (RFC 5464 §3.2) reach the store only when valid.
        use wharf_imap::syntax::{CommandKind, parser::valid_entry_name};
        match cmd.kind {
            CommandKind::GetMetadata { entries, .. } => {
                assert!(entries.iter().all(|e| valid_entry_name(e)));
            }
            CommandKind::SetMetadata { entries, .. } => {
                assert!(entries.iter().all(|(e, _)| valid_entry_name(e)));
            }
            // ESEARCH's source options are bounded (RFC 7377 MULTISEARCH): each name costs a
            // lookup, so at most 64 filters and 1000 names reach the session.
            CommandKind::Esearch {
                sources: Some(filters),
                ..
            } => {
                use wharf_imap::syntax::SourceFilter as F;
                assert!(!filters.is_empty() && filters.len() <= 64);
                let names: usize = filters
                    .iter()
                    .map(|f| match f {
                        F::Subtree(n) | F::SubtreeOne(n) | F::Mailboxes(n) => n.len(),
                        _ => 0,
                    })
                    .sum();
                assert!(names <= 1000);
            }
            // GENURLAUTH and URLFETCH take at most 100 URLs.
            CommandKind::GenUrlAuth(urls) => assert!(!urls.is_empty() && urls.len() <= 100),
            CommandKind::UrlFetch(urls) => assert!(!urls.is_empty() && urls.len() <= 100),
            _ => {}
        }
    }
    // CATENATE's IMAP URLs (RFC 5092) and URLAUTH's (RFC 4467) arrive as strings of such
    // commands; an URLAUTH URL's rump is always a prefix of it.
    if let Ok(url) = std::str::from_utf8(input) {
        let _ = wharf_imap::syntax::parse_imap_url(url);
        if let Ok(u) = wharf_imap::syntax::parse_auth_url(url) {
            assert!(url.starts_with(&u.rump));
        }
    }
});
