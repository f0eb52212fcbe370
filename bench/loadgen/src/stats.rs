//! Latency samples per operation and their summary (count, ops/s over the run, p50, p99).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Default)]
pub struct Stats {
    ops: BTreeMap<&'static str, Vec<u32>>,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl Stats {
    pub fn record(&mut self, op: &'static str, took: Duration) {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.ops.entry(op).or_default().push(us);
    }

    pub fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        self.last_error = Some(format!("{e:#}"));
    }

    pub fn merge(&mut self, other: Stats) {
        for (k, mut v) in other.ops {
            self.ops.entry(k).or_default().append(&mut v);
        }
        self.errors += other.errors;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }

    pub fn count(&self, op: &str) -> usize {
        self.ops.get(op).map_or(0, Vec::len)
    }

    pub fn summary(&mut self, wall: Duration) -> Value {
        let secs = wall.as_secs_f64().max(1e-9);
        let mut ops = serde_json::Map::new();
        for (k, v) in &mut self.ops {
            v.sort_unstable();
            ops.insert(
                (*k).to_string(),
                json!({
                    "count": v.len(),
                    "ops_per_s": v.len() as f64 / secs,
                    "p50_ms": pct(v, 0.50),
                    "p99_ms": pct(v, 0.99),
                    "max_ms": v.last().map_or(0.0, |m| *m as f64 / 1000.0),
                }),
            );
        }
        json!({"wall_s": secs, "ops": ops, "errors": self.errors, "last_error": self.last_error})
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}
