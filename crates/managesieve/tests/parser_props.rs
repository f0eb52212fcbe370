//! Properties of the wire parser: no input makes it (or the framing helpers) panic, quoted
//! strings and literals round-trip, and a session fed arbitrary bytes never panics and never
//! keeps more than its bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use proptest::prelude::*;
use wharf_managesieve::syntax::{self, Command, Output};

proptest! {
    #[test]
    fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = syntax::parse(&buf);
        let _ = syntax::parse_sasl_response(&buf);
        let _ = syntax::literal_at_end(&buf);
        let _ = syntax::script_name(&buf);
        let _ = syntax::keyword(&buf);
    }

    #[test]
    fn parse_never_panics_on_commandlike_input(
        word in prop::sample::select(vec![
            "PUTSCRIPT", "CHECKSCRIPT", "HAVESPACE", "RENAMESCRIPT", "AUTHENTICATE", "NOOP",
            "GETSCRIPT", "SETACTIVE", "DELETESCRIPT", "LOGOUT",
        ]),
        rest in "[ \"{}+0-9a-z\\\\\r\n]{0,64}",
    ) {
        let _ = syntax::parse(format!("{word}{rest}").as_bytes());
    }

    #[test]
    fn strings_round_trip(s in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut o = Output::new();
        o.bytes.extend_from_slice(b"NOOP ");
        o.string(&s);
        prop_assert_eq!(syntax::parse(&o.bytes), Ok(Command::Noop(Some(s))));
    }

    #[test]
    fn sessions_survive_arbitrary_bytes(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 1..8)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mem = Mem::new();
            let mut t = alice(&mem).await;
            for c in chunks {
                if t.closed || t.tls_requested {
                    break;
                }
                let _ = t.raw(&c).await;
            }
            let scripts = mem.with(|s| s.scripts.get(&ALICE).map_or(0, |m| m.len()));
            assert!(scripts <= 32);
        });
    }
}
