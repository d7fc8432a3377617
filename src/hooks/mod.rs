//! Webhook subscriptions and webhook waits: what the daemon remembers about them, and the
//! tasks that deliver to their callbacks.
//!
//! Owns: the records (index tables `subscriptions` and `waits`, id → JSON; the callback
//! URL in them is a secret that never leaves this module but towards `deliver`), a
//! subscription's position (`acks`: `subscription/ID` while active, renamed
//! `paused-subscription/ID` while paused, removed on unsubscribe), one delivery task per
//! active subscription and per wait (one call in flight each, in stamp order, the position
//! moved only after a `2xx`, committed without holding up the next call, at most
//! [`UNCOMMITTED_MAX`] calls ahead of the commit), backoff with jitter honouring `Retry-After`, pausing
//! after `webhook.pause_after_s` of failure, and restarting everything from the index.
//! Does not own: checking callback URLs and sending (`deliver`), the HTTP routes and their
//! JSON errors (`routes::hooks`), what a body holds (`offer`), or the clean-up that reads
//! `acks`.

mod wait;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebhookSettings;
use crate::cursor::FirstCursor;
use crate::deliver::{Callback, Outbound, Outcome};
use crate::error::IndexError;
use crate::filter::PathGlob;
use crate::folder::Folder;
use crate::index::{IndexReader, Registry, WriteOp, WriterHandle};
use crate::offer::{self, BatchLimits};
use crate::stamp::Stamp;

pub(crate) use wait::WaitRequest;

/// How often an idle task looks for new files (a lock-free check).
const IDLE: Duration = Duration::from_millis(100);
/// The first wait after a failure; it doubles up to `webhook.max_backoff_s`.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How many calls of one subscription may be delivered (`2xx`) or in flight while their
/// position is not known to be committed: the next call does not wait for the commit of
/// the last one's position (commits go on meanwhile, one at a time, each with every
/// position reached so far). So after a `kill -9` at most this many calls are sent again
/// (README, webhooks); a call waits for a commit only when this many are outstanding.
pub(crate) const UNCOMMITTED_MAX: usize = 16;
/// `lag` counts at most this many waiting files.
pub(crate) const LAG_CAP: u64 = 10_000;
const NANOS: i64 = 1_000_000_000;

/// `single` (one File per call) or `batch` (an array of Files per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// One File per call.
    Single,
    /// Up to `maxFileCount` Files per call.
    Batch,
}

/// What a subscriber asks for.
#[derive(Debug, Clone)]
pub(crate) struct SubscribeRequest {
    /// The checked callback.
    pub(crate) callback: Callback,
    /// Only files whose relative path matches.
    pub(crate) glob: Option<String>,
    /// Single or batch.
    pub(crate) mode: Mode,
    /// Files per batch.
    pub(crate) max_file_count: usize,
    /// Content inline (else a `contentLink`).
    pub(crate) inline: bool,
    /// The base URL the subscriber called, for `contentLink`s.
    pub(crate) base: String,
}

/// A subscription as the index keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubRecord {
    folder: String,
    /// Secret.
    callback_url: String,
    glob: Option<String>,
    mode: Mode,
    max_file_count: usize,
    inline: bool,
    base: String,
    paused: bool,
    failing_since: Option<String>,
    last_error: Option<String>,
    created: String,
    /// Unsubscribed: kept (with its position under [`ended_key`]) so that subscribing the
    /// same callback again goes on where it stood; never delivered, listed or waited for.
    #[serde(default)]
    ended: bool,
}

/// The state a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Delivering, or nothing to deliver.
    Active,
    /// The last call failed; retrying.
    Retrying,
    /// Failed longer than `webhook.pause_after_s`; waits to be subscribed again.
    Paused,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Retrying => "retrying",
            State::Paused => "paused",
        }
    }
}

/// A subscription's live status, shared with its task.
#[derive(Debug)]
struct Status {
    state: State,
    position: Stamp,
    failing_since: Option<Stamp>,
    last_error: Option<String>,
}

struct Sub {
    record: SubRecord,
    status: Arc<Mutex<Status>>,
    run: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

/// What the tasks share.
struct Shared {
    outbound: Outbound,
    folders: Vec<Arc<Folder>>,
    records: IndexReader,
    writer: WriterHandle,
    first_cursor: FirstCursor,
    settings: WebhookSettings,
    batch_max_bytes: u64,
    max_wait_s: u64,
    token: CancellationToken,
    tracker: TaskTracker,
    waits: wait::Waits,
}

/// The webhook subscriptions and waits of the daemon.
pub(crate) struct Hooks {
    shared: Arc<Shared>,
    subs: Mutex<HashMap<String, Sub>>,
    /// Held by a subscribe or unsubscribe across its awaits.
    ops: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// The parts [`Hooks::new`] needs.
pub(crate) struct HooksDeps {
    /// The client.
    pub(crate) outbound: Outbound,
    /// The folders served.
    pub(crate) folders: Vec<Arc<Folder>>,
    /// Any reader (the records are global).
    pub(crate) records: IndexReader,
    /// The writer (records are global; acks go through each folder's writer).
    pub(crate) writer: WriterHandle,
    /// Fresh positions.
    pub(crate) first_cursor: FirstCursor,
    /// `[webhook]`
    pub(crate) settings: WebhookSettings,
    /// `trigger.batch_max_bytes`
    pub(crate) batch_max_bytes: u64,
    /// `actions.max_wait_s`
    pub(crate) max_wait_s: u64,
}

/// A random id: 16 hex digits.
fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random fraction in `[0, 1)` for jitter.
fn random_fraction() -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Exponential backoff with jitter, capped, honouring `Retry-After`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff {
            next: FIRST_BACKOFF.min(max),
            max,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = FIRST_BACKOFF.min(self.max);
    }

    /// The wait before the next try: half to all of the current step (doubling each
    /// time), the cap for a `slow` failure; at least `retry_after` (up to the cap).
    pub(crate) fn wait(&mut self, retry_after: Option<Duration>, slow: bool) -> Duration {
        let step = if slow { self.max } else { self.next };
        self.next = (self.next * 2).min(self.max);
        let jittered = step.mul_f64(0.5 + random_fraction() / 2.0);
        match retry_after {
            Some(r) => r.min(self.max).max(jittered.min(r.min(self.max))),
            None => jittered,
        }
    }
}

fn stamp_text(s: Option<Stamp>) -> Option<String> {
    s.map(|s| s.to_string())
}

fn parse_stamp(s: &Option<String>) -> Option<Stamp> {
    s.as_deref().and_then(|t| Stamp::parse(t).ok())
}

fn ack_key(id: &str, paused: bool) -> String {
    if paused {
        format!("paused-subscription/{id}")
    } else {
        format!("subscription/{id}")
    }
}

/// Where an unsubscribed subscription's position is kept: not under `subscription/`, so
/// the clean-up does not wait for it.
fn ended_key(id: &str) -> String {
    format!("ended-subscription/{id}")
}

/// The position a subscription started at: what was indexed before it was never
/// delivered to it, so the clean-up keeps it.
pub(crate) fn origin_key(id: &str) -> String {
    format!("origin/subscription/{id}")
}

/// Sleeps `d` unless `token` is cancelled first (`false` then).
async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

impl Shared {
    fn folder(&self, name: &str) -> Option<Arc<Folder>> {
        self.folders.iter().find(|f| f.name == name).cloned()
    }

    async fn put(
        &self,
        registry: Registry,
        id: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), IndexError> {
        self.writer
            .apply(WriteOp::Record {
                registry,
                id: id.to_string(),
                value,
            })
            .await
    }

    fn pause_after(&self) -> i64 {
        i64::try_from(self.settings.pause_after_s)
            .unwrap_or(i64::MAX / NANOS)
            .saturating_mul(NANOS)
    }
}

impl Hooks {
    /// Loads the records from the index and starts a task per active subscription and
    /// per wait; every task stops when `token` is cancelled.
    ///
    /// # Errors
    /// The index cannot be read.
    pub(crate) async fn start(
        deps: HooksDeps,
        token: CancellationToken,
    ) -> Result<Arc<Hooks>, IndexError> {
        let shared = Arc::new(Shared {
            outbound: deps.outbound,
            folders: deps.folders,
            records: deps.records,
            writer: deps.writer,
            first_cursor: deps.first_cursor,
            settings: deps.settings,
            batch_max_bytes: deps.batch_max_bytes,
            max_wait_s: deps.max_wait_s,
            token,
            tracker: TaskTracker::new(),
            waits: wait::Waits::default(),
        });
        let hooks = Arc::new(Hooks {
            shared: shared.clone(),
            subs: Mutex::new(HashMap::new()),
            ops: tokio::sync::Mutex::new(()),
        });
        let reader = shared.records.clone();
        let records = tokio::task::spawn_blocking(move || reader.records(Registry::Subscriptions))
            .await
            .map_err(|_| IndexError::Unavailable)??;
        let mut restored = Vec::new();
        for (id, bytes) in records {
            let Ok(record) = serde_json::from_slice::<SubRecord>(&bytes) else {
                tracing::warn!(subscription = %id, "unreadable subscription record; ignored");
                continue;
            };
            if record.ended {
                continue;
            }
            let Some(folder) = shared.folder(&record.folder) else {
                tracing::warn!(subscription = %id, folder = %record.folder, "subscription of a folder no longer configured; kept, not delivered");
                continue;
            };
            let reader = folder.reader.clone();
            let (active_key, paused_key) = (ack_key(&id, false), ack_key(&id, true));
            let acks = tokio::task::spawn_blocking(move || -> Result<_, IndexError> {
                let snap = reader.snapshot()?;
                Ok((snap.ack(&active_key)?, snap.ack(&paused_key)?))
            })
            .await
            .map_err(|_| IndexError::Unavailable)??;
            let position = match acks {
                (Some(a), Some(p)) => a.max(p),
                (Some(a), None) => a,
                (None, Some(p)) => p,
                (None, None) => shared.first_cursor.now().await?,
            };
            // A crash between writing the record and renaming its ack: make the ack
            // say what the record says.
            set_ack(&folder, &id, record.paused, position).await?;
            let status = Arc::new(Mutex::new(Status {
                state: if record.paused {
                    State::Paused
                } else if record.failing_since.is_some() {
                    State::Retrying
                } else {
                    State::Active
                },
                position,
                failing_since: parse_stamp(&record.failing_since),
                last_error: record.last_error.clone(),
            }));
            let run = (!record.paused).then(|| spawn_sub(&shared, &folder, &id, &record, &status));
            tracing::info!(subscription = %id, folder = %record.folder, paused = record.paused, "subscription restored");
            restored.push((
                id,
                Sub {
                    record,
                    status,
                    run,
                },
            ));
        }
        hooks.subs().extend(restored);
        wait::restore(&hooks).await?;
        Ok(hooks)
    }

    fn subs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sub>> {
        self.subs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops every task (an in-flight call is abandoned: its file comes again after the
    /// restart, with the same stamp) and waits for them.
    pub(crate) async fn stop(&self) {
        self.shared.token.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
    }

    /// The checks callback URLs pass.
    pub(crate) fn policy(&self) -> &crate::deliver::Policy {
        self.shared.outbound.policy()
    }

    /// `actions.max_wait_s`
    pub(crate) fn max_wait_s(&self) -> u64 {
        self.shared.max_wait_s
    }

    /// Subscribes `req.callback` to `folder`: a new subscription at a fresh position, or,
    /// for a callback already subscribed there, the same one with the new settings, its
    /// position kept, resumed if paused. Returns its id and whether it is new.
    ///
    /// # Errors
    /// The index cannot be written.
    pub(crate) async fn subscribe(
        &self,
        folder: &Folder,
        req: SubscribeRequest,
    ) -> Result<(String, serde_json::Value), IndexError> {
        let shared = &self.shared;
        let Some(folder) = shared.folder(&folder.name) else {
            return Err(IndexError::Unavailable);
        };
        let url = req.callback.secret_text();
        // One subscribe or unsubscribe at a time; the map itself is locked only briefly.
        let _one = self.ops.lock().await;
        let existing = {
            let mut subs = self.subs();
            subs.iter_mut()
                .find(|(_, s)| s.record.folder == folder.name && s.record.callback_url == url)
                .map(|(id, s)| {
                    (
                        id.clone(),
                        s.run.take(),
                        s.status.clone(),
                        s.record.created.clone(),
                    )
                })
        };
        let (id, position, created) = match existing {
            Some((id, run, status, created)) => {
                if let Some((token, join)) = run {
                    token.cancel();
                    let _ = join.await;
                }
                let pos = lock(&status).position;
                tracing::info!(subscription = %id, callback = %req.callback, "subscribed again: settings updated, position kept");
                (id, pos, created)
            }
            None => match self.ended(&folder, &url).await? {
                Some((id, pos, created)) => {
                    folder.writer.apply(WriteOp::Unack(ended_key(&id))).await?;
                    tracing::info!(subscription = %id, callback = %req.callback, "subscribed again after unsubscribing: position kept");
                    (id, pos, created)
                }
                None => {
                    let id = new_id();
                    let pos = shared.first_cursor.now().await?;
                    folder
                        .writer
                        .send(WriteOp::Ack {
                            key: origin_key(&id),
                            stamp: pos,
                        })
                        .await?;
                    tracing::info!(subscription = %id, folder = %folder.name, callback = %req.callback, "subscribed");
                    (id, pos, Stamp::now().to_string())
                }
            },
        };
        let record = SubRecord {
            folder: folder.name.clone(),
            callback_url: url,
            glob: req.glob,
            mode: req.mode,
            max_file_count: req.max_file_count,
            inline: req.inline,
            base: req.base,
            paused: false,
            failing_since: None,
            last_error: None,
            created,
            ended: false,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| IndexError::Unavailable)?;
        shared
            .put(Registry::Subscriptions, &id, Some(bytes))
            .await?;
        set_ack(&folder, &id, false, position).await?;
        let status = Arc::new(Mutex::new(Status {
            state: State::Active,
            position,
            failing_since: None,
            last_error: None,
        }));
        let run = Some(spawn_sub(shared, &folder, &id, &record, &status));
        let sub = Sub {
            record,
            status,
            run,
        };
        let view = view(&id, &sub, None);
        self.subs().insert(id.clone(), sub);
        Ok((id, view))
    }

    /// Ends the subscription `id` of `folder` (nothing when there is none). Returns whether
    /// there was one.
    ///
    /// # Errors
    /// The index cannot be written.
    pub(crate) async fn unsubscribe(&self, folder: &Folder, id: &str) -> Result<bool, IndexError> {
        let _one = self.ops.lock().await;
        let (run, status, mut record) = {
            let mut subs = self.subs();
            match subs.get_mut(id) {
                Some(s) if s.record.folder == folder.name => {
                    (s.run.take(), s.status.clone(), s.record.clone())
                }
                _ => return Ok(false),
            }
        };
        if let Some((token, join)) = run {
            token.cancel();
            let _ = join.await;
        }
        // Kept, ended: the same callback subscribing again goes on from here.
        let position = lock(&status).position;
        record.ended = true;
        let bytes = serde_json::to_vec(&record).map_err(|_| IndexError::Unavailable)?;
        self.shared
            .put(Registry::Subscriptions, id, Some(bytes))
            .await?;
        folder
            .writer
            .send(WriteOp::Ack {
                key: ended_key(id),
                stamp: position,
            })
            .await?;
        folder
            .writer
            .apply(WriteOp::Unack(ack_key(id, false)))
            .await?;
        folder
            .writer
            .apply(WriteOp::Unack(ack_key(id, true)))
            .await?;
        self.subs().remove(id);
        tracing::info!(subscription = %id, folder = %folder.name, "unsubscribed");
        Ok(true)
    }

    /// The ended subscription of `url` on `folder`, if any: its id, kept position and
    /// creation time.
    async fn ended(
        &self,
        folder: &Folder,
        url: &str,
    ) -> Result<Option<(String, Stamp, String)>, IndexError> {
        let reader = self.shared.records.clone();
        let records = tokio::task::spawn_blocking(move || reader.records(Registry::Subscriptions))
            .await
            .map_err(|_| IndexError::Unavailable)??;
        for (id, bytes) in records {
            let Ok(r) = serde_json::from_slice::<SubRecord>(&bytes) else {
                continue;
            };
            if !(r.ended && r.folder == folder.name && r.callback_url == url) {
                continue;
            }
            let key = ended_key(&id);
            let reader = folder.reader.clone();
            let at = tokio::task::spawn_blocking(move || reader.snapshot()?.ack(&key))
                .await
                .map_err(|_| IndexError::Unavailable)??;
            if let Some(at) = at {
                return Ok(Some((id, at, r.created)));
            }
        }
        Ok(None)
    }

    /// The subscriptions of `folder` (only `id`'s when given), oldest first, as the API
    /// shows them.
    ///
    /// # Errors
    /// The index cannot be read (for `lag`).
    pub(crate) async fn list(
        &self,
        folder: &Folder,
        only: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, IndexError> {
        let mut mine: Vec<(String, String, Stamp)> = self
            .subs()
            .iter()
            .filter(|(id, s)| {
                s.record.folder == folder.name && only.is_none_or(|o| o == id.as_str())
            })
            .map(|(id, s)| {
                (
                    s.record.created.clone(),
                    id.clone(),
                    lock(&s.status).position,
                )
            })
            .collect();
        mine.sort();
        let reader = folder.reader.clone();
        let positions: Vec<Stamp> = mine.iter().map(|(_, _, p)| *p).collect();
        let lags = tokio::task::spawn_blocking(move || -> Result<Vec<u64>, IndexError> {
            let snap = reader.snapshot()?;
            positions
                .iter()
                .map(|p| snap.count_after(*p, LAG_CAP))
                .collect()
        })
        .await
        .map_err(|_| IndexError::Unavailable)??;
        let subs = self.subs();
        Ok(mine
            .iter()
            .zip(lags)
            .filter_map(|((_, id, _), lag)| subs.get(id).map(|s| view(id, s, Some(lag))))
            .collect())
    }

    /// Counts by state, for `/healthz`.
    pub(crate) fn counts(&self) -> crate::health::HookCounts {
        let mut c = crate::health::HookCounts {
            waits: self.shared.waits.len(),
            ..Default::default()
        };
        for s in self.subs().values() {
            match lock(&s.status).state {
                State::Active => c.active += 1,
                State::Retrying => c.retrying += 1,
                State::Paused => c.paused += 1,
            }
        }
        c
    }
}

fn lock(m: &Mutex<Status>) -> std::sync::MutexGuard<'_, Status> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A subscription as the API shows it: never the callback URL, only its host.
fn view(id: &str, sub: &Sub, lag: Option<u64>) -> serde_json::Value {
    let s = lock(&sub.status);
    let host = sub
        .record
        .callback_url
        .parse::<hyper::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let mut v = serde_json::json!({
        "id": id,
        "host": host,
        "state": s.state.as_str(),
        "position": s.position.to_string(),
        "mode": sub.record.mode,
        "maxFileCount": sub.record.max_file_count,
        "content": if sub.record.inline { "inline" } else { "none" },
    });
    if let Some(g) = &sub.record.glob {
        v["glob"] = g.clone().into();
    }
    if let Some(l) = lag {
        v["lag"] = l.into();
    }
    if let Some(e) = &s.last_error {
        v["lastError"] = e.clone().into();
    }
    if let Some(f) = s.failing_since {
        v["failingSince"] = f.to_string().into();
    }
    v
}

/// Makes `acks` hold the position under the key for `paused` only.
async fn set_ack(
    folder: &Folder,
    id: &str,
    paused: bool,
    position: Stamp,
) -> Result<(), IndexError> {
    folder
        .writer
        .send(WriteOp::Ack {
            key: ack_key(id, paused),
            stamp: position,
        })
        .await?;
    folder
        .writer
        .apply(WriteOp::Unack(ack_key(id, !paused)))
        .await
}

fn spawn_sub(
    shared: &Arc<Shared>,
    folder: &Arc<Folder>,
    id: &str,
    record: &SubRecord,
    status: &Arc<Mutex<Status>>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = shared.token.child_token();
    let run = deliver_loop(
        shared.clone(),
        folder.clone(),
        id.to_string(),
        record.clone(),
        status.clone(),
        token.clone(),
    );
    let span = tracing::info_span!("subscription", id = %id);
    let join = shared
        .tracker
        .spawn(tracing::Instrument::instrument(run, span));
    (token, join)
}

/// What the next call of a subscription is.
enum Next {
    /// Nothing new.
    Nothing,
    /// Only entries to walk past (gone, changed, not matching): move the position.
    Skip(Stamp),
    /// A body to POST, and the stamp of its last file.
    Deliver(Bytes, Stamp),
}

/// Builds the next body after `position`, as the polling trigger would answer it.
async fn next_body(
    shared: &Shared,
    folder: &Folder,
    record: &SubRecord,
    glob: Option<&Arc<PathGlob>>,
    position: Stamp,
) -> Result<Next, String> {
    let single = record.mode == Mode::Single;
    let limits = BatchLimits {
        max_files: if single { 1 } else { record.max_file_count },
        // The single trigger has no byte budget: its one file comes with its content up to
        // max_content_bytes, like a poll.
        budget: if single {
            u64::MAX
        } else {
            shared.batch_max_bytes
        },
        max_content: folder.max_content,
        inline: record.inline,
    };
    let inline = record.inline;
    // On a local folder, first on this worker from the kernel's caches (no hand-off to
    // the blocking pool), as a poll does; else, or when a file is not cached, blocking.
    let cached = if folder.local {
        offer::try_batch_after_matching(
            &folder.reader,
            &folder.root,
            position,
            limits,
            |s, v| {
                (!inline)
                    .then(|| crate::routes::content_link(&record.base, &folder.name, s, v))
                    .flatten()
            },
            |rel| glob.is_none_or(|g| g.matches(rel)),
        )
        .map_err(|e| e.to_string())?
    } else {
        None
    };
    let batch = match cached {
        Some(batch) => batch,
        None => {
            let reader = folder.reader.clone();
            let root = folder.root.clone();
            let base = record.base.clone();
            let name = folder.name.clone();
            let glob = glob.cloned();
            tokio::task::spawn_blocking(move || {
                offer::batch_after_matching(
                    &reader,
                    &root,
                    position,
                    limits,
                    |s, v| {
                        (!inline)
                            .then(|| crate::routes::content_link(&base, &name, s, v))
                            .flatten()
                    },
                    |rel| glob.as_ref().is_none_or(|g| g.matches(rel)),
                )
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
        }
    };
    let Some(last) = batch.offers.last().map(|(o, _)| o.stamp) else {
        return Ok(match batch.walked {
            Some(w) if w > position => Next::Skip(w),
            _ => Next::Nothing,
        });
    };
    let body = if single {
        let Some((offer, link)) = batch.offers.into_iter().next() else {
            return Ok(Next::Nothing);
        };
        match link {
            Some(l) => offer::body_with_link(offer, Some(&l)),
            None => offer::body(offer),
        }
    } else {
        batch.into_body()
    };
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Next::Deliver(bytes, last))
}

/// One subscription's deliveries until cancelled or paused.
async fn deliver_loop(
    shared: Arc<Shared>,
    folder: Arc<Folder>,
    id: String,
    mut record: SubRecord,
    status: Arc<Mutex<Status>>,
    token: CancellationToken,
) {
    let Ok(callback) = shared.outbound.policy().parse(&record.callback_url) else {
        // Paused, not left `active`: an active subscription that never delivers would
        // hold back the clean-up for good and look healthy in /healthz.
        let why = "the callback URL is not allowed by [webhook] any more";
        lock(&status).last_error = Some(why.into());
        record.last_error = Some(why.into());
        pause(&shared, &folder, &id, &mut record, &status, why).await;
        return;
    };
    let glob = record
        .glob
        .as_deref()
        .and_then(|g| PathGlob::new(g).ok())
        .map(Arc::new);
    let key = ack_key(&id, false);
    let mut backoff = Backoff::new(Duration::from_secs(shared.settings.max_backoff_s));
    let mut uncommitted = Uncommitted::default();
    // The next call's body, built while the last call was in flight, and the position it
    // was built after (used only if the position is still that).
    let mut built: Option<(Stamp, Next)> = None;
    'run: loop {
        uncommitted.settle(&folder, &key, usize::MAX).await;
        if token.is_cancelled() {
            break 'run;
        }
        let position = lock(&status).position;
        let next = match built.take() {
            Some((after, next)) if after == position => next,
            _ => {
                if !folder.reader.maybe_after(position) {
                    // Idle: everything delivered is committed first.
                    uncommitted.settle(&folder, &key, 1).await;
                    if !sleep_or_cancel(IDLE, &token).await {
                        break 'run;
                    }
                    continue;
                }
                match next_body(&shared, &folder, &record, glob.as_ref(), position).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot build the next delivery; retrying");
                        if !sleep_or_cancel(Duration::from_secs(1), &token).await {
                            break 'run;
                        }
                        continue;
                    }
                }
            }
        };
        let (body, last) = match next {
            Next::Nothing => {
                uncommitted.settle(&folder, &key, 1).await;
                if !sleep_or_cancel(IDLE, &token).await {
                    break 'run;
                }
                continue;
            }
            Next::Skip(to) => {
                advance(&folder, &key, &status, to, false, &mut uncommitted).await;
                continue;
            }
            Next::Deliver(body, last) => (body, last),
        };
        // Not more than UNCOMMITTED_MAX calls delivered ahead of the committed position.
        uncommitted.settle(&folder, &key, UNCOMMITTED_MAX).await;
        // The next body is built while this call is in flight (and dropped if it fails).
        let ahead = async {
            if folder.reader.maybe_after(last) {
                next_body(&shared, &folder, &record, glob.as_ref(), last)
                    .await
                    .ok()
            } else {
                None
            }
        };
        let (outcome, ahead) = tokio::select! {
            _ = token.cancelled() => break 'run,
            both = async {
                tokio::join!(shared.outbound.post(&callback, body, Some(last)), ahead)
            } => both,
        };
        if token.is_cancelled() {
            // Unsubscribed or shutting down meanwhile: the ack must not outlive it.
            break 'run;
        }
        match outcome {
            Outcome::Delivered => {
                backoff.reset();
                let was_failing = {
                    let mut s = lock(&status);
                    let was = s.failing_since.is_some();
                    s.failing_since = None;
                    s.last_error = None;
                    s.state = State::Active;
                    was
                };
                advance(&folder, &key, &status, last, true, &mut uncommitted).await;
                built = ahead
                    .filter(|n| !matches!(n, Next::Nothing))
                    .map(|n| (last, n));
                if was_failing {
                    record.failing_since = None;
                    record.last_error = None;
                    save(&shared, &id, &record).await;
                    tracing::info!(callback = %callback, "deliveries succeed again");
                }
            }
            Outcome::Failed(f) => {
                let now = Stamp::now();
                let (since, first) = {
                    let mut s = lock(&status);
                    let first = s.failing_since.is_none();
                    let since = *s.failing_since.get_or_insert(now);
                    s.last_error = Some(f.why.clone());
                    s.state = State::Retrying;
                    (since, first)
                };
                tracing::warn!(callback = %callback, kind = f.kind, error = %f.why, stamp = %last, "delivery failed; retrying");
                if first {
                    record.failing_since = stamp_text(Some(since));
                    record.last_error = Some(f.why.clone());
                    save(&shared, &id, &record).await;
                }
                if now.0.saturating_sub(since.0) >= shared.pause_after() {
                    // Before the pause moves the position to its paused key.
                    uncommitted.flush(&folder, &key).await;
                    pause(&shared, &folder, &id, &mut record, &status, &f.why).await;
                    break 'run;
                }
                let wait = backoff.wait(f.retry_after, f.slow);
                if !sleep_or_cancel(wait, &token).await {
                    break 'run;
                }
            }
        }
    }
    // Ending (unsubscribe, shutdown): what waits goes to the writer before whatever ends
    // the task writes next (an unsubscribe's `Unack`).
    uncommitted.flush(&folder, &key).await;
}

/// A subscription's position on its way to the index: one commit at a time is asked for;
/// positions reached meanwhile wait and go together in the next one (so the writer is
/// woken once per commit, not once per call).
#[derive(Default)]
struct Uncommitted {
    /// The position sent, the answer of its commit, and how many calls it covers.
    sent: Option<(Committed, usize)>,
    /// The latest position not sent yet, and how many calls it covers.
    waiting: Option<(Stamp, usize)>,
}

type Committed = tokio::sync::oneshot::Receiver<Result<(), IndexError>>;

impl Uncommitted {
    /// How many calls moved the position past what is known to be committed.
    fn calls(&self) -> usize {
        self.sent.as_ref().map_or(0, |s| s.1) + self.waiting.map_or(0, |w| w.1)
    }

    /// Takes note of a move to `to` (by a call when `call`), and sends it if no commit is
    /// awaited.
    async fn moved(&mut self, folder: &Folder, key: &str, to: Stamp, call: bool) {
        let calls = self.waiting.map_or(0, |w| w.1) + usize::from(call);
        self.waiting = Some((to, calls));
        self.settle(folder, key, usize::MAX).await;
    }

    /// Forgets a commit that is done, sends what waits, and waits for commits while
    /// `max` or more calls are not known to be committed. A failed commit is logged: its
    /// position is in memory only, and the files up to it may be delivered again after
    /// a restart (the next commit of a later position makes up for it).
    async fn settle(&mut self, folder: &Folder, key: &str, max: usize) {
        use tokio::sync::oneshot::error::TryRecvError;
        loop {
            let full = self.calls() >= max;
            if let Some((committed, _)) = self.sent.as_mut() {
                let answer = if full {
                    committed.await.map_err(|_| IndexError::WriterGone)
                } else {
                    match committed.try_recv() {
                        Ok(r) => Ok(r),
                        Err(TryRecvError::Empty) => return,
                        Err(TryRecvError::Closed) => Err(IndexError::WriterGone),
                    }
                };
                self.sent = None;
                if let Err(e) = answer.and_then(|r| r) {
                    tracing::warn!(error = %e, "cannot record the position");
                }
            }
            let Some((to, calls)) = self.waiting.take() else {
                return;
            };
            match folder
                .writer
                .send_committed(WriteOp::Ack {
                    key: key.to_string(),
                    stamp: to,
                })
                .await
            {
                Ok(committed) => self.sent = Some((committed, calls)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record the position");
                    return;
                }
            }
        }
    }

    /// Sends what waits without waiting for anything (the task is ending: the writer
    /// gets it before whatever ends the task writes next).
    async fn flush(&mut self, folder: &Folder, key: &str) {
        if let Some((to, _)) = self.waiting.take() {
            let ack = WriteOp::Ack {
                key: key.to_string(),
                stamp: to,
            };
            if let Err(e) = folder.writer.send(ack).await {
                tracing::warn!(error = %e, "cannot record the position");
            }
        }
    }
}

/// Moves the position to `to` at once in memory, and on its way to the index
/// ([`Uncommitted`]); `call` when a delivered call moved it.
async fn advance(
    folder: &Folder,
    key: &str,
    status: &Mutex<Status>,
    to: Stamp,
    call: bool,
    uncommitted: &mut Uncommitted,
) {
    uncommitted.moved(folder, key, to, call).await;
    let mut s = lock(status);
    s.position = s.position.max(to);
}

async fn save(shared: &Shared, id: &str, record: &SubRecord) {
    let Ok(bytes) = serde_json::to_vec(record) else {
        return;
    };
    if let Err(e) = shared.put(Registry::Subscriptions, id, Some(bytes)).await {
        tracing::warn!(error = %e, "cannot record the subscription's state");
    }
}

async fn pause(
    shared: &Shared,
    folder: &Folder,
    id: &str,
    record: &mut SubRecord,
    status: &Mutex<Status>,
    why: &str,
) {
    record.paused = true;
    save(shared, id, record).await;
    let position = {
        let mut s = lock(status);
        s.state = State::Paused;
        s.position
    };
    if let Err(e) = set_ack(folder, id, true, position).await {
        tracing::warn!(error = %e, "cannot record the pause");
    }
    tracing::error!(
        error = %why,
        pause_after_s = shared.settings.pause_after_s,
        "the callback kept failing: subscription paused until it is subscribed again"
    );
}
