//! Webhook waits: `POST /watches/NAME/waits` registered a callback and a glob; the daemon
//! POSTs `{"status":"found","file":File}` for the first matching file indexed after the
//! wait began, or `{"status":"timedOut",...}` at the deadline, then forgets the wait.
//!
//! Owns: the wait records (index table `waits`), one task per wait (the walk of the index
//! after the wait's start, bounded per step like the polling wait action), delivering its
//! one answer with the subscriptions' retry rules, and restoring waits after a restart.
//! Does not own: the routes (`routes::hooks`), the checks of the callback (`deliver`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{parse_stamp, sleep_or_cancel, Backoff, Hooks, Shared, IDLE, NANOS};
use crate::deliver::{Callback, Outcome};
use crate::error::IndexError;
use crate::filter::PathGlob;
use crate::folder::Folder;
use crate::index::Registry;
use crate::offer::{self, Content, Offer};
use crate::stamp::Stamp;

/// Index entries one step of the walk examines at most.
const SCAN_BUDGET: usize = 20_000;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub(crate) struct WaitRequest {
    /// The checked callback.
    pub(crate) callback: Callback,
    /// The glob a file's relative path must match.
    pub(crate) glob: String,
    /// Seconds until `timedOut`.
    pub(crate) timeout_s: u64,
    /// Content inline (else a `contentLink`).
    pub(crate) inline: bool,
    /// The base URL the caller used, for `contentLink`.
    pub(crate) base: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitRecord {
    folder: String,
    /// Secret.
    callback_url: String,
    glob: String,
    since: String,
    deadline: String,
    inline: bool,
    base: String,
}

/// The running waits: id → (folder, the task's token).
#[derive(Debug, Default)]
pub(super) struct Waits {
    running: Mutex<HashMap<String, (String, CancellationToken)>>,
}

impl Waits {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, CancellationToken)>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn len(&self) -> usize {
        self.map().len()
    }
}

impl Hooks {
    /// Registers a wait on `folder`; returns its id and its JSON view.
    ///
    /// # Errors
    /// The index cannot be written.
    pub(crate) async fn add_wait(
        &self,
        folder: &Folder,
        req: WaitRequest,
    ) -> Result<(String, serde_json::Value), IndexError> {
        let shared = &self.shared;
        let since = shared.first_cursor.now().await?;
        let secs = i64::try_from(req.timeout_s).unwrap_or(i64::MAX / NANOS);
        let deadline = Stamp(Stamp::now().0.saturating_add(secs.saturating_mul(NANOS)));
        let id = super::new_id();
        let record = WaitRecord {
            folder: folder.name.clone(),
            callback_url: req.callback.secret_text(),
            glob: req.glob,
            since: since.to_string(),
            deadline: deadline.to_string(),
            inline: req.inline,
            base: req.base,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| IndexError::Unavailable)?;
        shared.put(Registry::Waits, &id, Some(bytes)).await?;
        tracing::info!(wait = %id, folder = %folder.name, callback = %req.callback, "webhook wait registered");
        let view = view(&id, &record, &req.callback);
        self.spawn_wait(id.clone(), record);
        Ok((id, view))
    }

    /// Cancels the wait `id` of `folder`; whether there was one.
    ///
    /// # Errors
    /// The index cannot be written.
    pub(crate) async fn cancel_wait(&self, folder: &Folder, id: &str) -> Result<bool, IndexError> {
        let found = {
            let mut map = self.shared.waits.map();
            match map.get(id) {
                Some((f, _)) if *f == folder.name => map.remove(id),
                _ => None,
            }
        };
        let Some((_, token)) = found else {
            return Ok(false);
        };
        token.cancel();
        self.shared.put(Registry::Waits, id, None).await?;
        tracing::info!(wait = %id, "webhook wait cancelled");
        Ok(true)
    }

    fn spawn_wait(&self, id: String, record: WaitRecord) {
        let shared = self.shared.clone();
        let Some(folder) = shared.folder(&record.folder) else {
            tracing::warn!(wait = %id, folder = %record.folder, "webhook wait of a folder no longer configured; kept, not run");
            return;
        };
        let token = shared.token.child_token();
        shared
            .waits
            .map()
            .insert(id.clone(), (record.folder.clone(), token.clone()));
        let span = tracing::info_span!("wait", id = %id);
        shared.tracker.spawn(tracing::Instrument::instrument(
            run(shared.clone(), folder, id, record, token),
            span,
        ));
    }
}

/// Restarts the waits recorded in the index.
pub(super) async fn restore(hooks: &Hooks) -> Result<(), IndexError> {
    let reader = hooks.shared.records.clone();
    let records = tokio::task::spawn_blocking(move || reader.records(Registry::Waits))
        .await
        .map_err(|_| IndexError::Unavailable)??;
    for (id, bytes) in records {
        match serde_json::from_slice::<WaitRecord>(&bytes) {
            Ok(r) => {
                tracing::info!(wait = %id, folder = %r.folder, "webhook wait restored");
                hooks.spawn_wait(id, r);
            }
            Err(_) => tracing::warn!(wait = %id, "unreadable wait record; ignored"),
        }
    }
    Ok(())
}

fn view(id: &str, r: &WaitRecord, callback: &Callback) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "host": callback.host(),
        "glob": r.glob,
        "since": r.since,
        "deadline": r.deadline,
        "state": "waiting",
    })
}

async fn run(
    shared: Arc<Shared>,
    folder: Arc<Folder>,
    id: String,
    record: WaitRecord,
    token: CancellationToken,
) {
    let (Ok(callback), Ok(glob)) = (
        shared.outbound.policy().parse(&record.callback_url),
        PathGlob::new(&record.glob),
    ) else {
        tracing::warn!("the stored wait is no longer valid under [webhook]; forgotten");
        forget(&shared, &id).await;
        return;
    };
    let glob = Arc::new(glob);
    let (Some(since), Some(deadline)) = (
        parse_stamp(&Some(record.since.clone())),
        parse_stamp(&Some(record.deadline.clone())),
    ) else {
        forget(&shared, &id).await;
        return;
    };
    let mut from = since;
    loop {
        if token.is_cancelled() {
            return;
        }
        let mut complete = true;
        if folder.reader.maybe_after(from) {
            let reader = folder.reader.clone();
            let root = folder.root.clone();
            let max_content = folder.max_content;
            let g = glob.clone();
            let walked = tokio::task::spawn_blocking(move || {
                offer::next_matching(&reader, &root, from, max_content, SCAN_BUDGET, |rel| {
                    g.matches(rel)
                })
            })
            .await;
            match walked {
                Ok(Ok(s)) => {
                    if let Some(offer) = s.found {
                        let stamp = offer.stamp;
                        match found_body(offer, &record, &folder).await {
                            Ok(body) => {
                                if deliver(&shared, &callback, body, Some(stamp), &token).await {
                                    forget(&shared, &id).await;
                                }
                                return;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot read the found file; looking on")
                            }
                        }
                    }
                    if let Some(last) = s.last {
                        from = from.max(last);
                    }
                    complete = s.complete;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "index read failed"),
                Err(e) => tracing::warn!(error = %e, "wait task failed"),
            }
        }
        let now = Stamp::now();
        if complete && now >= deadline {
            let body = serde_json::json!({
                "status": "timedOut",
                "since": record.since,
                "deadline": record.deadline,
            });
            if deliver(
                &shared,
                &callback,
                Bytes::from(body.to_string()),
                None,
                &token,
            )
            .await
            {
                forget(&shared, &id).await;
            }
            return;
        }
        if !complete {
            continue;
        }
        let left =
            Duration::from_nanos(u64::try_from(deadline.0.saturating_sub(now.0)).unwrap_or(0));
        if !sleep_or_cancel(IDLE.min(left), &token).await {
            return;
        }
    }
}

/// `{"status":"found","file":File}`, the File as the polling wait action answers it.
async fn found_body(
    offer: Offer,
    record: &WaitRecord,
    folder: &Folder,
) -> Result<Bytes, std::io::Error> {
    let file = if record.inline {
        offer::body(offer)
    } else {
        let link =
            crate::routes::content_link(&record.base, &folder.name, offer.stamp, &offer.version);
        let props = Offer {
            content: Content::NotAsked,
            ..offer
        };
        offer::body_with_link(props, link.as_deref())
    };
    let file = file.collect().await?.to_bytes();
    let mut out = Vec::with_capacity(file.len() + 32);
    out.extend_from_slice(b"{\"status\":\"found\",\"file\":");
    out.extend_from_slice(&file);
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// POSTs `body` until a `2xx` (`true`), cancellation (`false`), or failures for longer
/// than `webhook.pause_after_s` (`true`: given up, logged).
async fn deliver(
    shared: &Shared,
    callback: &Callback,
    body: Bytes,
    stamp: Option<Stamp>,
    token: &CancellationToken,
) -> bool {
    let mut backoff = Backoff::new(Duration::from_secs(shared.settings.max_backoff_s));
    let mut since = None;
    loop {
        let outcome = tokio::select! {
            _ = token.cancelled() => return false,
            o = shared.outbound.post(callback, body.clone(), stamp) => o,
        };
        match outcome {
            Outcome::Delivered => {
                tracing::info!(callback = %callback, "webhook wait answered");
                return true;
            }
            Outcome::Failed(f) => {
                let now = Stamp::now();
                let first = *since.get_or_insert(now);
                tracing::warn!(callback = %callback, kind = f.kind, error = %f.why, "webhook wait delivery failed; retrying");
                if now.0.saturating_sub(first.0) >= shared.pause_after() {
                    tracing::error!(callback = %callback, "webhook wait given up: the callback kept failing for webhook.pause_after_s");
                    return true;
                }
                if !sleep_or_cancel(backoff.wait(f.retry_after, f.slow), token).await {
                    return false;
                }
            }
        }
    }
}

async fn forget(shared: &Shared, id: &str) {
    shared.waits.map().remove(id);
    if let Err(e) = shared.put(Registry::Waits, id, None).await {
        tracing::warn!(error = %e, "cannot forget the wait");
    }
}
