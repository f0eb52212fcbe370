//! Differential test against Pigeonhole, Dovecot's Sieve implementation: every pair of the
//! corpus (`tests/differential/cases.rs`) runs through `sieve-test` (Debian package
//! `dovecot-sieve`) and through Wharf, and the normalised action lists must agree, except for
//! the deliberate differences listed in `tests/differential/README.md` and `known.rs`, whose
//! Wharf result is asserted instead.
//!
//! `sieve-test` missing is a failure; `WHARF_SKIP_PIGEONHOLE=1` skips (developer machines only).
//! `WHARF_DIFF_VERBOSE=1` prints every pair's two normalised results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "differential/cases.rs"]
mod cases;
#[path = "differential/harness.rs"]
mod harness;
#[path = "differential/known.rs"]
mod known;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn find_sieve_test() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("sieve-test"))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn wharf_matches_pigeonhole() {
    let Some(sieve_test) = find_sieve_test() else {
        if std::env::var("WHARF_SKIP_PIGEONHOLE").as_deref() == Ok("1") {
            eprintln!(
                "\n!!!!!!!! WHARF_SKIP_PIGEONHOLE=1: the Pigeonhole differential test was SKIPPED !!!!!!!!\n"
            );
            return;
        }
        panic!(
            "`sieve-test` is not on PATH: install Pigeonhole (`apt-get install dovecot-sieve`) to run \
             the differential test (or set WHARF_SKIP_PIGEONHOLE=1 on a developer machine)"
        );
    };
    let started = Instant::now();
    let corpus = cases::corpus();
    assert!(
        corpus.len() >= 200,
        "corpus has only {} pairs",
        corpus.len()
    );
    let known = known::differences();
    for k in &known {
        assert!(
            corpus.iter().any(|c| c.name == k.name),
            "known difference {} names no pair",
            k.name
        );
    }

    let root = std::env::temp_dir().join(format!("wharf-sieve-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let config = harness::write_config(&root, running_as_root());
    let now = chrono::Utc::now().fixed_offset();
    let env = harness::Env {
        sieve_test: &sieve_test,
        config: &config,
        root: &root,
        now,
    };

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<harness::Pair>>> =
        Mutex::new((0..corpus.len()).map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = corpus.get(i) else { break };
                    let pair = harness::run_pair(&env, i, case);
                    results.lock().unwrap()[i] = Some(pair);
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&root);

    let results = results.into_inner().unwrap();
    let mut matched = 0;
    let mut documented = 0;
    let mut failures = Vec::new();
    for (case, pair) in corpus.iter().zip(results) {
        let pair = pair.expect("pair ran");
        if std::env::var_os("WHARF_DIFF_VERBOSE").is_some() {
            eprintln!(
                "{}: pigeonhole {} / wharf {}",
                case.name, pair.pigeonhole, pair.wharf
            );
        }
        let known = known.iter().find(|k| k.name == case.name);
        match known {
            None if pair.pigeonhole == pair.wharf => matched += 1,
            None => failures.push(format!(
                "MISMATCH {}\n--- script\n{}\n--- pigeonhole: {}\n--- wharf:      {}\n--- raw\n{}\n",
                case.name, case.script, pair.pigeonhole, pair.wharf, pair.pigeonhole_raw
            )),
            Some(k) => {
                let expected: Vec<String> = k.wharf.iter().map(|s| s.to_string()).collect();
                if pair.wharf.actions != expected {
                    failures.push(format!(
                        "DOCUMENTED DIFFERENCE {} changed: wharf gives {} but {} is documented\n",
                        case.name,
                        pair.wharf,
                        expected.join(" | ")
                    ));
                } else if pair.pigeonhole == pair.wharf {
                    failures.push(format!(
                        "DOCUMENTED DIFFERENCE {} no longer differs: remove it from known.rs\n",
                        case.name
                    ));
                } else {
                    documented += 1;
                }
            }
        }
    }
    eprintln!(
        "differential: {} pairs, {matched} match Pigeonhole, {documented} documented differences, \
         {} failures, {:.1?}",
        corpus.len(),
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} pairs disagree with Pigeonhole:\n\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}
