//! This node's outbound side as `serve` runs it: the delivery worker built from `[outbound]`
//! on the store's durable queue, with the stored DKIM keys, DSNs to local senders delivered
//! straight into their INBOX, and the handoff the SMTP listeners queue remote recipients through.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;
use wharf_directory::Directory;
use wharf_outbound::Outbound;
use wharf_outbound::local::LocalBounceSink;
use wharf_outbound::queue::QueueStore;
use wharf_outbound::route::Router;

use crate::config::Loaded;
use crate::handoff::QueueHandoff;
use crate::wiring::outbound_settings;

pub struct OutboundNode {
    pub outbound: Arc<Outbound>,
    pub handoff: Arc<QueueHandoff>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl OutboundNode {
    /// Builds the worker (nothing is sent until `start`).
    pub fn build(
        cfg: &Loaded,
        hostname: &str,
        node_id: &str,
        directory: &Directory,
        queue: Arc<dyn QueueStore>,
        tls_results: Option<wharf_outbound::tls_report::SinkHandle>,
        dkim_keys: &[crate::dkim_keys::StoredKey],
    ) -> Result<OutboundNode> {
        let mut settings = outbound_settings(cfg, hostname)?;
        settings.client.tls_results = tls_results;
        // Leases are owned by the node's generated id (`wharf node list`).
        settings.queue.node_id = node_id.to_string();
        let (signers, loaded) = crate::dkim_keys::signers(dkim_keys)?;
        if loaded.is_empty() {
            info!("no DKIM keys: outbound mail is not signed (wharf dkim generate <domain>)");
        } else {
            info!(keys = %loaded.join(", "), "DKIM signing keys loaded");
        }
        let router = Router::new(settings.router).map_err(|e| anyhow!("outbound: {e}"))?;
        let max_age = i64::try_from(settings.queue.max_age.as_secs()).unwrap_or(i64::MAX / 4);
        let bounces = Arc::new(LocalBounceSink::new(
            directory.clone(),
            queue.clone(),
            max_age,
        ));
        let outbound = Outbound::new(
            queue,
            router,
            settings.client,
            settings.queue,
            signers,
            Some(bounces),
        );
        let handoff = Arc::new(
            QueueHandoff::new(outbound.clone(), max_age)
                .with_correspondents(directory.store().clone()),
        );
        let (stop, _) = watch::channel(false);
        Ok(OutboundNode {
            outbound,
            handoff,
            stop,
            task: None,
        })
    }

    /// Starts draining the queue (entries left by an earlier run are taken up at once).
    pub fn start(&mut self) {
        let worker = self.outbound.clone();
        let rx = self.stop.subscribe();
        self.task = Some(tokio::spawn(worker.run(rx)));
    }

    /// Stops leasing; attempts in flight get the worker's grace period to record their results.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
