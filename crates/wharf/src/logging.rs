//! Log output: tracing-subscriber to standard error, filtered by `RUST_LOG` or the `[log] level` key.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; `RUST_LOG` wins over `default_filter`.
pub fn init(default_filter: &str) {
    let chosen = std::env::var("RUST_LOG").unwrap_or_else(|_| default_filter.to_string());
    install(&chosen);
}

/// Like `init`, but the `ready` line of `wharf serve` (scripts wait for it) stays visible even when
/// the level is quieter than `info`, unless the filter names this crate itself.
pub fn init_server(configured: &str) {
    let chosen = std::env::var("RUST_LOG").unwrap_or_else(|_| configured.to_string());
    if chosen.contains("wharf=") || chosen.contains("wharf::") {
        install(&chosen);
    } else {
        install(&format!("{chosen},wharf::serve=info"));
    }
}

fn install(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}
