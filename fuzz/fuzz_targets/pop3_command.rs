//! POP3 command lines straight from the network.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let _ = wharf_pop3::syntax::parse(line);
});
