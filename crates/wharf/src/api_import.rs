//! The admin API's import (`POST /api/v1/accounts/{address}/import`): a request body, an mbox
//! or one message, streamed through `wharf import`'s `MboxReader` into a mailbox. The body is
//! never held whole: it is read as it arrives, split on a blocking thread and appended one
//! message at a time, each bounded by `[limits] max_message_size` and the whole body by
//! `[http] api_import_max_bytes`; the store's quota check stops it when the account is full.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf as _, Bytes};
use serde::Serialize;
use tokio::sync::mpsc;
use wharf_directory::Directory;
use wharf_http::{ApiError, ApiReply, ImportFormat, ImportInput, RequestBody};
use wharf_store::{Flags, MailboxId, Store, StoreError};

use crate::config::Loaded;
use crate::import::{MboxMessage, MboxReader, ensure_mailbox, to_crlf};
use crate::ops;

/// Problems listed in a reply (the counts go on past it).
const MAX_PROBLEMS: usize = 20;

/// The longest one import may take (with at most two at once, a client trickling a body in
/// must not hold the import slots for ever): 1 GiB at 1 MB/s fits.
const IMPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub mailbox: String,
    pub imported: u64,
    /// Messages passed over: larger than `[limits] max_message_size`, or empty.
    pub skipped: u64,
    /// Messages the store refused.
    pub errors: u64,
    /// Why the import ended before the body did (the account's quota reached, a body that is
    /// not an mbox after some messages), if it did.
    pub stopped: Option<String>,
    /// The first problems met, one line each.
    pub problems: Vec<String>,
}

impl ImportReport {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

pub async fn import(
    cfg: &Loaded,
    dir: &Directory,
    input: ImportInput,
    mut body: RequestBody,
) -> Result<ApiReply, ApiError> {
    let account = ops::accounts::find(dir, &input.address).await?;
    let mailbox = input.mailbox.as_deref().unwrap_or("INBOX");
    if !mailbox.eq_ignore_ascii_case("INBOX")
        && let Some(why) = wharf_store::names::mailbox_name_problem(mailbox)
    {
        return Err(ApiError::invalid(why));
    }
    let store = dir.store().clone();
    let cap = cfg.config.http.api_import_max_bytes;
    let max_message = usize::try_from(cfg.config.limits.max_message_size).unwrap_or(usize::MAX);
    // Created (with its parents) when the first message is ready, so that a refused or empty
    // body leaves no mailbox behind.
    let mut target = Target {
        store: store.clone(),
        account: account.clone(),
        name: mailbox.to_string(),
        id: None,
    };
    let mut report = ImportReport {
        mailbox: mailbox.to_string(),
        ..ImportReport::default()
    };
    match input.format {
        ImportFormat::Message => {
            let limit = usize::try_from(cap).unwrap_or(usize::MAX).min(max_message);
            let raw = body.read_capped(limit).await?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError::invalid("the message is empty"));
            }
            let date = header_date(&raw).unwrap_or_else(|| chrono::Utc::now().timestamp());
            let mailbox_id = target.id().await?;
            match store
                .append(
                    mailbox_id,
                    Bytes::from(to_crlf(&raw)),
                    Flags::empty(),
                    &[],
                    date,
                )
                .await
            {
                Ok(_) => report.imported = 1,
                Err(StoreError::OverQuota) => {
                    return Err(ApiError::invalid("the account's quota is exceeded"));
                }
                Err(e) => return Err(ops::OpError::from(e).into()),
            }
        }
        ImportFormat::Mbox => {
            import_mbox(&store, &mut target, body, cap, max_message, &mut report).await?;
        }
    }
    tracing::info!(
        account = account.address,
        mailbox,
        imported = report.imported,
        skipped = report.skipped,
        errors = report.errors,
        "api: import done"
    );
    let json = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ApiReply::Ok(json))
}

/// The mailbox an import writes to, made when first needed.
struct Target {
    store: Arc<dyn Store>,
    account: wharf_store::Account,
    name: String,
    id: Option<MailboxId>,
}

impl Target {
    async fn id(&mut self) -> Result<MailboxId, ApiError> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        let id = ensure_mailbox(&self.store, &self.account, &self.name)
            .await
            .map_err(|e| ApiError::internal(format!("mailbox {}: {e:#}", self.name)))?;
        self.id = Some(id);
        Ok(id)
    }
}

/// The Date header as Unix seconds (the internal date a client sorts by), if it parses.
fn header_date(raw: &[u8]) -> Option<i64> {
    let parsed = mail_parser::MessageParser::default().parse_headers(raw)?;
    parsed.date().map(|d| d.to_timestamp())
}

async fn import_mbox(
    store: &Arc<dyn Store>,
    target: &mut Target,
    mut body: RequestBody,
    cap: u64,
    max_message: usize,
    report: &mut ImportReport,
) -> Result<(), ApiError> {
    // Small channels: at most a few chunks and one parsed message wait between the stages.
    let (chunk_tx, chunk_rx) = mpsc::channel::<Result<Bytes, String>>(4);
    let (msg_tx, mut msg_rx) = mpsc::channel::<anyhow::Result<MboxMessage>>(1);
    let over_cap = Arc::new(AtomicBool::new(false));
    let pump_over_cap = over_cap.clone();
    // Set when the import ends before the body does: the parser stops at its next read and the
    // pump at its next chunk, instead of reading on through an oversized message to the cap.
    let stopped = Arc::new(AtomicBool::new(false));
    let pump_stopped = stopped.clone();
    let pump = tokio::spawn(async move {
        let mut total = 0u64;
        loop {
            if pump_stopped.load(Ordering::SeqCst) {
                drop(chunk_tx);
                body.drain().await;
                return;
            }
            let chunk = match body.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    let _ = chunk_tx.send(Err(e.message)).await;
                    return;
                }
            };
            total = total.saturating_add(chunk.len() as u64);
            if total > cap {
                pump_over_cap.store(true, Ordering::SeqCst);
                let _ = chunk_tx
                    .send(Err("the body is over the size limit".into()))
                    .await;
                drop(chunk_tx);
                body.drain().await;
                return;
            }
            if chunk_tx.send(Ok(chunk)).await.is_err() {
                // The import stopped early (quota, a body that is not an mbox).
                body.drain().await;
                return;
            }
        }
    });
    let parser_stopped = stopped.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let input = std::io::BufReader::new(ChannelReader {
            rx: chunk_rx,
            current: Bytes::new(),
            stopped: parser_stopped,
        });
        let mut mbox = MboxReader::new(input).with_max_message(max_message);
        loop {
            match mbox.next_message() {
                Ok(None) => break,
                Ok(Some(m)) => {
                    if msg_tx.blocking_send(Ok(m)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = msg_tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let mut n = 0u64;
    let mut failure = None;
    let deadline = tokio::time::Instant::now() + IMPORT_DEADLINE;
    let mut out_of_time = false;
    loop {
        let next = match tokio::time::timeout_at(deadline, msg_rx.recv()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                out_of_time = true;
                report.stopped = Some(format!(
                    "after message {n}: the import took longer than {} s; the rest was not imported",
                    IMPORT_DEADLINE.as_secs()
                ));
                break;
            }
        };
        n += 1;
        let msg = match next {
            Ok(m) => m,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if msg.oversized || msg.raw.is_empty() {
            report.skipped += 1;
            report.problem(format!(
                "message {n}: {}",
                if msg.oversized {
                    "larger than [limits] max_message_size, skipped"
                } else {
                    "empty, skipped"
                }
            ));
            continue;
        }
        let date = msg
            .internal_date
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        let mailbox_id = match target.id().await {
            Ok(id) => id,
            Err(e) => {
                report.stopped = Some(format!("message {n}: {}", e.message));
                break;
            }
        };
        match store
            .append(
                mailbox_id,
                Bytes::from(msg.raw),
                msg.flags,
                &msg.keywords,
                date,
            )
            .await
        {
            Ok(_) => report.imported += 1,
            Err(StoreError::OverQuota) => {
                report.stopped = Some(format!(
                    "message {n}: the account's quota is exceeded; the rest was not imported"
                ));
                break;
            }
            Err(e @ (StoreError::Unavailable(_) | StoreError::Backend(_) | StoreError::Io(_))) => {
                report.stopped = Some(format!("message {n}: store: {e}"));
                break;
            }
            Err(e) => {
                report.errors += 1;
                report.problem(format!("message {n}: {e}"));
            }
        }
    }
    // Ends both stages whatever they wait for: the parser's next message finds the channel
    // closed, which closes its input, and the pump then drains what the client still sends
    // (at most `MAX_DRAIN`) so that it reads the reply rather than a reset connection.
    stopped.store(true, Ordering::SeqCst);
    drop(msg_rx);
    if out_of_time {
        // A client this slow gets no drain: dropping its body ends the parser's input too.
        pump.abort();
    }
    let _ = parser.await;
    let _ = pump.await;
    if over_cap.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            413,
            "too_large",
            format!(
                "the request body is larger than the limit of {cap} octets ([http] api_import_max_bytes); {} messages were imported before it",
                report.imported
            ),
        ));
    }
    if let Some(e) = failure {
        if report.imported == 0 && report.skipped == 0 && report.errors == 0 {
            return Err(ApiError::invalid(format!("{e:#}")));
        }
        report.stopped = Some(format!("message {n}: {e:#}"));
    }
    Ok(())
}

/// The body's chunks as a blocking reader, for `MboxReader` on its own thread.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    stopped: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the import has stopped"));
        }
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
