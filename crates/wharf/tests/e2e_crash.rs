//! Crash safety through the real binary: concurrent smtplib clients deliver on port 25, the
//! server is killed with SIGKILL at a random moment, restarted on the same data folder, and
//! every message that got its 250 is in the INBOX exactly once when read over IMAP. Two rounds,
//! so the second crash hits a store that already recovered from one.
//!
//! Needs python3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::e2e;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use e2e::{Mail, kv};
use rand::Rng;

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn kill_9_under_smtp_load_loses_and_duplicates_no_acknowledged_message() {
    let mut mail = Mail::new();
    let acked = mail.work.join("acked");
    let tried = mail.work.join("tried");
    let mut rng = rand::thread_rng();
    for round in 1..=2 {
        let before = lines(&acked).len();
        let mut blaster = mail.py_spawn(
            "blast",
            &[
                kv("clients", 4),
                kv("run", round),
                kv("acked", acked.display()),
                kv("tried", tried.display()),
            ],
        );
        // Let deliveries start, then kill at a random moment while they run.
        let start = Instant::now();
        while lines(&acked).len() < before + 5 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "round {round}: no deliveries acknowledged"
            );
            if let Some(status) = blaster.try_wait().unwrap() {
                let out = blaster.wait_with_output().unwrap();
                panic!(
                    "round {round}: senders stopped early ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..900)));
        mail.kill9();

        // The senders notice the dead connections and stop.
        let end = Instant::now() + Duration::from_secs(60);
        while blaster.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "senders did not stop after the kill");
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = blaster.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "round {round}: senders: {}\n{stderr}",
            out.status
        );

        mail.start();
        let ids_file = mail.work.join(format!("inbox-{round}"));
        let imaps = mail.port("imaps");
        mail.py(
            "imap_ids",
            &[
                kv("port", imaps),
                kv("mode", "ssl"),
                kv("out", ids_file.display()),
            ],
        );
        let inbox = lines(&ids_file);
        let acked_ids = lines(&acked);
        let tried_ids: HashSet<String> = lines(&tried).into_iter().collect();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for id in &inbox {
            *count.entry(id.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "round {round}: stored twice: {twice:?}");
        let lost: Vec<_> = acked_ids
            .iter()
            .filter(|id| !count.contains_key(id.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged with 250 but not in the INBOX after kill -9: {lost:?}"
        );
        let unknown: Vec<_> = inbox.iter().filter(|id| !tried_ids.contains(*id)).collect();
        assert!(
            unknown.is_empty(),
            "round {round}: in the INBOX but never sent: {unknown:?}"
        );
        // Unacknowledged but stored: at most the messages in flight at each kill, one per client.
        assert!(
            inbox.len() <= acked_ids.len() + 4 * round,
            "round {round}: {} stored, {} acknowledged",
            inbox.len(),
            acked_ids.len()
        );
        eprintln!(
            "round {round}: {} acknowledged, {} in the INBOX",
            acked_ids.len(),
            inbox.len()
        );
    }
    mail.stop();
}
