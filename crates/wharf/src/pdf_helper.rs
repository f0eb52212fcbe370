//! `wharf extract-pdf`: the helper process that reads PDF text for search (issue 22). The server
//! never parses a PDF itself: lopdf loads a whole file with no bound of its own, so a small
//! hostile PDF could take gigabytes and minutes. This process limits itself before reading its
//! input (address space, CPU seconds, no files written), reads the PDF on standard input, writes
//! its text on standard output, and is killed by the server at the message's deadline
//! (`wharf_mime::attachments::set_pdf_helper`). It runs before any thread or runtime is started.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Address space the helper may map: the input (at most `MAX_INPUT`) and lopdf's objects.
const MAX_ADDRESS_SPACE: u64 = 768 * 1024 * 1024;
/// Largest PDF read (the server skips larger attachments before it gets here).
const MAX_INPUT: u64 = 64 * 1024 * 1024;

/// Makes this executable (`wharf extract-pdf`) the PDF helper of the process: `serve` and
/// `reindex` call it. Without a path to the executable PDFs are skipped with a reason.
pub fn install() {
    match std::env::current_exe() {
        Ok(program) => {
            wharf_mime::attachments::set_pdf_helper(wharf_mime::attachments::PdfHelper {
                program,
                args: vec!["extract-pdf".into()],
            })
        }
        Err(e) => tracing::warn!(error = %e, "PDF text disabled: own executable not found"),
    }
}

/// The helper's run; status 0 with the text on standard output, 2 with a reason on standard
/// error.
pub fn run(max_text: usize, budget_ms: u64) -> ExitCode {
    let budget = Duration::from_millis(budget_ms.max(1));
    if let Err(e) = limit_self(budget) {
        eprintln!("PDF helper cannot limit itself: {e}");
        return ExitCode::from(2);
    }
    let deadline = Instant::now() + budget;
    let mut data = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT).read_to_end(&mut data) {
        eprintln!("PDF helper cannot read its input: {e}");
        return ExitCode::from(2);
    }
    match wharf_mime::attachments::read_pdf_text(&data, max_text, deadline) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::from(2)
        }
    }
}

/// rlimits on this process: address space, CPU seconds (the budget, rounded up, plus one), no
/// file writes, and no core dumps.
fn limit_self(budget: Duration) -> std::io::Result<()> {
    let cpu = budget.as_secs() + 2;
    set_limit(libc::RLIMIT_AS, MAX_ADDRESS_SPACE)?;
    set_limit(libc::RLIMIT_CPU, cpu)?;
    set_limit(libc::RLIMIT_FSIZE, 0)?;
    set_limit(libc::RLIMIT_CORE, 0)?;
    Ok(())
}

#[allow(
    unsafe_code,
    reason = "setrlimit(2) has no safe wrapper in our dependencies; see SAFETY"
)]
fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid, initialised rlimit that outlives the call; setrlimit only
    // reads it.
    let r = unsafe { libc::setrlimit(resource, &limit) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
