//! Server memory from /proc: RSS and PSS (from smaps_rollup) summed over every process of a server's
//! process tree, since Dovecot and Postfix run one process per session or service and Wharf runs one.

use crate::args::Args;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Copy, Default)]
pub struct Mem {
    pub rss_kb: u64,
    pub pss_kb: u64,
    pub procs: u64,
}

impl Mem {
    pub fn json(&self) -> Value {
        json!({"rss_kb": self.rss_kb, "pss_kb": self.pss_kb, "procs": self.procs})
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every pid whose ancestry reaches one of `roots`, the roots included.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && let Some(pp) = parent_of(pid)
            {
                children.entry(pp).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo: Vec<u32> = roots.to_vec();
    while let Some(p) = todo.pop() {
        if std::path::Path::new(&format!("/proc/{p}")).exists() {
            out.push(p);
        }
        if let Some(c) = children.get(&p) {
            todo.extend(c);
        }
    }
    out
}

pub fn measure(roots: &[u32]) -> Mem {
    let mut m = Mem::default();
    for pid in tree(roots) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        m.procs += 1;
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let key = f.next();
            let kb: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match key {
                Some("Rss:") => m.rss_kb += kb,
                Some("Pss:") => m.pss_kb += kb,
                _ => {}
            }
        }
    }
    m
}

pub fn pids(args: &Args) -> Result<Vec<u32>> {
    args.all("pid")
        .iter()
        .map(|p| p.parse::<u32>().with_context(|| format!("--pid {p:?}")))
        .collect()
}

pub fn once(args: &Args) -> Result<Value> {
    Ok(measure(&pids(args)?).json())
}

/// Samples until killed, rewriting `--out` with the peak seen so far after every sample.
pub async fn sample(args: &Args) -> Result<Value> {
    let roots = pids(args)?;
    let out = args.required("out")?;
    let every = Duration::from_millis(args.num("interval-ms", 500u64)?);
    let mut peak = Mem::default();
    loop {
        let m = measure(&roots);
        if m.rss_kb > peak.rss_kb {
            peak.rss_kb = m.rss_kb;
            peak.procs = m.procs;
        }
        peak.pss_kb = peak.pss_kb.max(m.pss_kb);
        let tmp = format!("{out}.tmp");
        std::fs::write(&tmp, peak.json().to_string())?;
        std::fs::rename(&tmp, &out)?;
        tokio::time::sleep(every).await;
    }
}
