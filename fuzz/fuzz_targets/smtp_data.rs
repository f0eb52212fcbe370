//! DATA content from the network, split into arbitrary reads: the receiver must never panic, never keep
//! more than the cap, and — the smuggling property — the message must end exactly at the first
//! `<CRLF>.<CRLF>` whatever the split, and an accepted message under the reject policy has no bare CR/LF.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wharf_smtp::BareLfPolicy;
use wharf_smtp::body::{BodyReceiver, Framing};

const LIMIT: usize = 4096;

fn run(input: &[u8], split: usize, policy: BareLfPolicy) -> (usize, bool, Option<Vec<u8>>) {
    let mut rx = BodyReceiver::new(Framing::Data, policy, LIMIT, 1000, Vec::new(), None);
    let mut consumed = 0;
    let mut ended = false;
    for chunk in input.chunks(split.max(1)) {
        let (n, end) = rx.feed_data(chunk);
        consumed += n;
        if end {
            ended = true;
            break;
        }
        assert_eq!(n, chunk.len(), "bytes before the end are all consumed");
    }
    let body = if ended { rx.finish().ok().map(|r| r.raw) } else { None };
    (consumed, ended, body)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let whole = run(input, input.len().max(1), BareLfPolicy::Reject);
    let pieces = run(input, split as usize, BareLfPolicy::Reject);
    assert_eq!(whole, pieces, "the split of reads must not change where a message ends");
    if let Some(body) = &whole.2 {
        assert!(body.len() <= LIMIT);
        for (i, &b) in body.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && body[i - 1] == b'\r', "bare LF accepted");
            }
            if b == b'\r' {
                assert_eq!(body.get(i + 1), Some(&b'\n'), "bare CR accepted");
            }
        }
    }
    let _ = run(input, split as usize, BareLfPolicy::Normalize);
});
