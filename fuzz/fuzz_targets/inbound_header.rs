//! Arriving messages' header sections, searched for Authentication-Results fields that claim
//! our authserv-id: never a panic, and the ranges found always lie inside the message.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: &[u8]| {
    let found = wharf_inbound::header::our_results(message, "mx.example.org");
    for r in &found {
        assert!(r.start <= r.end && r.end <= message.len());
    }
    let kept = wharf_inbound::header::without(message, &found);
    assert!(kept.len() <= message.len());
});
