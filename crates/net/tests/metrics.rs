//! What the server loop records for `/metrics`: connections per listener,
//! refusals by reason, running sessions per protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use wharf_net::{Limits, TlsMode};

/// The value of the sample line `series` (name and labels exactly as rendered).
fn sample(handle: &PrometheusHandle, series: &str) -> Option<f64> {
    handle.render().lines().find_map(|l| {
        let v = l.strip_prefix(series)?.strip_prefix(' ')?;
        v.parse().ok()
    })
}

async fn until(handle: &PrometheusHandle, series: &str, want: f64) {
    let start = Instant::now();
    while sample(handle, series) != Some(want) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{series}: want {want}, have {:?}\n{}",
            sample(handle, series),
            handle.render()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connections_refusals_and_sessions_are_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let r = serve(
        None,
        TlsMode::None,
        false,
        Limits {
            max_per_ip: 1,
            ..limits()
        },
    )
    .await;
    let mut a = plain_client(r.addr).await;
    assert_eq!(a.line().await, "+OK hello\r\n");
    until(&handle, "wharf_sessions_active{protocol=\"other\"}", 1.0).await;
    let mut b = plain_client(r.addr).await;
    assert_eq!(b.rest().await, TOO_BUSY);
    until(
        &handle,
        "wharf_connections_refused_total{listener=\"test\",reason=\"ip_limit\"}",
        1.0,
    )
    .await;
    assert_eq!(
        sample(&handle, "wharf_connections_total{listener=\"test\"}"),
        Some(2.0)
    );
    drop(a);
    until(&handle, "wharf_sessions_active{protocol=\"other\"}", 0.0).await;
    r.server.shutdown(Duration::from_secs(5)).await;
}
