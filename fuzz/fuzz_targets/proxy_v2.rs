//! The PROXY v2 header is the first thing an untrusted peer's bytes reach on a proxied listener.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = wharf_net::proxy::parse_proxy_v2(input);
});
