//! `wharf config check`: everything `serve` verifies before it binds a port, without starting
//! anything: the file parses and passes the semantic checks, there is a listener, the configured
//! certificate and key are readable PEM, the `[sieve]` admin scripts compile, and the data folder
//! exists or can be created. The first problem comes back as one `file:line:col: message` line.

use std::path::{Path, PathBuf};

use super::location::{ConfigError, located, span_of};
use super::{Loaded, load};

/// Checks `path`; `Ok` carries the loaded configuration.
pub fn check(path: &Path) -> Result<Loaded, ConfigError> {
    let loaded = load(path)?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let fail = |key: &str, message: String| {
        located(
            &loaded.path,
            &text,
            span_of(&text, key),
            Some(key.to_string()),
            message,
        )
    };
    if loaded.listeners().is_empty() {
        return Err(fail(
            "listener",
            "no [[listener]] configured: the server would accept nothing".to_string(),
        ));
    }
    let (cert, key, is_default) = loaded.tls_paths();
    if !is_default {
        for (name, p) in [("tls.cert", &cert), ("tls.key", &key)] {
            if let Err(e) = std::fs::File::open(p) {
                return Err(fail(name, format!("cannot read {}: {e}", p.display())));
            }
        }
        if let Err(e) = wharf_net::TlsProvider::from_pem_files(&cert, &key) {
            return Err(fail(
                "tls.cert",
                format!("{} / {}: {e}", cert.display(), key.display()),
            ));
        }
    }
    let sieve = &loaded.config.sieve;
    for (name, script) in [
        ("sieve.before", &sieve.before),
        ("sieve.after", &sieve.after),
    ] {
        let Some(p) = script.as_ref().filter(|_| sieve.enabled) else {
            continue;
        };
        let p = loaded.resolve(p);
        let body = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => return Err(fail(name, format!("cannot read {}: {e}", p.display()))),
        };
        let limits = wharf_sieve::CompileLimits {
            max_script_bytes: sieve.max_script_bytes.max(1 << 20),
            ..wharf_sieve::CompileLimits::default()
        };
        if let Err(e) = wharf_sieve::compile(&body, &limits) {
            // The position is in the script, not in wharf.toml.
            return Err(ConfigError {
                file: p,
                line: Some(e.line as usize),
                column: Some(e.column as usize),
                key: None,
                message: format!("{name}: {}", e.message),
            });
        }
    }
    if let Err(message) = data_dir_usable(&loaded.data_dir) {
        return Err(fail("server.data_dir", message));
    }
    Ok(loaded)
}

/// The data folder exists and takes a new file, or its nearest existing ancestor takes a new
/// folder. Whatever is created to find out is removed again.
fn data_dir_usable(dir: &Path) -> Result<(), String> {
    let probe_name = format!(".wharf-config-check-{}", std::process::id());
    if dir.exists() {
        if !dir.is_dir() {
            return Err(format!("{} exists and is not a folder", dir.display()));
        }
        let probe = dir.join(probe_name);
        return std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| format!("cannot write into {}: {e}", dir.display()));
    }
    let mut ancestor: PathBuf = dir.to_path_buf();
    while !ancestor.exists() {
        match ancestor.parent() {
            Some(p) if !p.as_os_str().is_empty() => ancestor = p.to_path_buf(),
            _ => {
                return Err(format!(
                    "cannot create {}: no existing parent",
                    dir.display()
                ));
            }
        }
    }
    if !ancestor.is_dir() {
        return Err(format!(
            "cannot create {}: {} is not a folder",
            dir.display(),
            ancestor.display()
        ));
    }
    let probe = ancestor.join(probe_name);
    std::fs::create_dir(&probe)
        .and_then(|()| std::fs::remove_dir(&probe))
        .map_err(|e| {
            format!(
                "cannot create {} (in {}): {e}",
                dir.display(),
                ancestor.display()
            )
        })
}
