//! ManageSieve commands straight from the network: a whole command buffer (lines and literals
//! as the session collects them), a SASL response, the literal detection of one line, and
//! script names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wharf_managesieve::syntax;

fuzz_target!(|data: &[u8]| {
    let _ = syntax::parse(data);
    let _ = syntax::parse_sasl_response(data);
    let _ = syntax::literal_at_end(syntax::trim_line(data));
    let _ = syntax::script_name(data);
});
