//! Log output: tracing-subscriber to standard error, filtered by `RUST_LOG` or the `[log] level` key,
//! as text lines or (`[log] format = "json"`) one JSON object per line.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Swaps the installed subscriber's filter (SIGHUP reload of `[log] level`).
type Reloader = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static RELOAD: OnceLock<Reloader> = OnceLock::new();

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
    match format {
        LogFormat::Text => {
            let builder = builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
        // Event fields at the top level, with the span's fields (session, peer) beside them.
        LogFormat::Json => {
            let builder = builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
    }
}

/// Applies a new `[log] level` to the running server (the `ready`-line rule of `init_server`
/// kept). `RUST_LOG`, when set, still wins: then nothing changes.
pub fn reload_level(configured: &str) -> Result<bool, String> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Ok(false);
    }
    let chosen = if configured.contains("wharf=") || configured.contains("wharf::") {
        configured.to_string()
    } else {
        format!("{configured},wharf::serve=info")
    };
    let filter = EnvFilter::try_new(&chosen).map_err(|e| e.to_string())?;
    match RELOAD.get() {
        Some(reload) => reload(filter).map(|()| true),
        None => Err("the log filter cannot be changed in this process".into()),
    }
}
