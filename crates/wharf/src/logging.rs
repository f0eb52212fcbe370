//! Log output: tracing-subscriber to standard error, filtered by `RUST_LOG` or the `[log] level` key,
//! as text lines or (`[log] format = "json"`) one JSON object per line.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; `RUST_LOG` wins over `default_filter`.
pub fn init(default_filter: &str) {
    let chosen = std::env::var("RUST_LOG").unwrap_or_else(|_| default_filter.to_string());
    install(&chosen, LogFormat::Text);
}

/// Like `init`, but the `ready` line of `wharf serve` (scripts wait for it) stays visible even when
/// the level is quieter than `info`, unless the filter names this crate itself.
pub fn init_server(configured: &str, format: LogFormat) {
    let chosen = std::env::var("RUST_LOG").unwrap_or_else(|_| configured.to_string());
    if chosen.contains("wharf=") || chosen.contains("wharf::") {
        install(&chosen, format);
    } else {
        install(&format!("{chosen},wharf::serve=info"), format);
    }
}

fn install(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        // Event fields at the top level, with the span's fields (session, peer) beside them.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
