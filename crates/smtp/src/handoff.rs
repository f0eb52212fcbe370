//! The boundary between SMTP reception and the outbound queue: what a session hands over for
//! recipients outside the local domains (submission to remote addresses, aliases forwarding
//! outside), and the trait the queue implements. The session awaits `enqueue` before its final
//! reply, then either `release`s the entry (the reply is 250) or `withdraw`s it (the local part
//! failed and the reply is 4xx: the client will send the whole message again, so the queued copy
//! must not leave, or the remote recipients would get it twice).

use async_trait::async_trait;

/// Takes messages for remote recipients. Implemented by the binary on top of the outbound queue.
#[async_trait]
pub trait RemoteHandoff: Send + Sync + 'static {
    /// Durably queues `msg`, held back until `release`; Ok(queue id as text) only once committed
    /// (the client's 250 depends on it). A held entry that is neither released nor withdrawn
    /// (the process died in between) is sent after a short hold anyway.
    async fn enqueue(&self, msg: OutboundMessage) -> Result<String, String>;
    /// The session answers 250: deliver the entry now.
    async fn release(&self, id: &str);
    /// The session answers with an error after all: forget the entry without any DSN.
    async fn withdraw(&self, id: &str);
}

/// One accepted message with its remote recipients and the submitter's DSN/REQUIRETLS requests.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// Envelope sender; "" for the null reverse path `<>`.
    pub sender: String,
    pub recipients: Vec<OutboundRecipient>,
    /// The message as accepted, starting with this server's Return-Path and Received headers
    /// (the same bytes local recipients get).
    pub raw: bytes::Bytes,
    /// xtext-decoded ENVID.
    pub envid: Option<String>,
    /// "FULL" | "HDRS" as given (upper-cased).
    pub ret: Option<String>,
    /// RFC 8689 REQUIRETLS on MAIL FROM.
    pub require_tls: bool,
    /// The SASL identity on submission; None on port 25 (alias forwarding).
    pub authenticated_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecipient {
    pub address: String,
    /// RFC 3461 NOTIFY as given (upper-cased), None when the client gave none.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT, `addr-type;address` with the address xtext-decoded.
    pub orcpt: Option<String>,
}
