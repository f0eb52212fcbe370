//! Mail that may carry a DMARC or TLS-RPT report (compressed attachments from anyone): never a
//! panic, and decompression stays under the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: &[u8]| {
    let _ = wharf_inbound::reports::parse(message);
});
