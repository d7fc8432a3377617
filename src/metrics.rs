//! What `GET /metrics` shows: the registry, in the Prometheus text format (0.0.4).
//!
//! Owns: every metric's name, help, type and labels (one [`Metrics`] per daemon), the
//! counters and histograms that other modules bump through its methods (plain atomics, or
//! a histogram's short uncontended lock: no allocation on the way of a poll), the values
//! read from their owners at scrape time (files indexed and pending, the watcher's mode,
//! the running scan, inotify watches against the limit, the index's commit counters), and
//! rendering all of it ([`Metrics::render`]).
//! Does not own: serving the text or who may read it (`routes::metrics`, `routes`), the
//! values read at scrape time (`health`, `index`), or when scans and commits happen
//! (`discover`, `index`).
//!
//! Per consumer and per subscription metrics (lag, deliveries, failures) wait for named
//! consumers and webhooks (issue 12). `files_indexed` and `files_pending` carry each
//! watched folder's name in their `folder` label; `files_offered` counts the single
//! trigger's `200`s by folder (`/trigger` is the folder `default`; a batch's files are not
//! counted); requests are labelled by operation (`trigger`, `batch`, `content`, ...), never
//! by folder name; the watcher's mode and the scans are the first folder's, `healthy` is
//! every folder's.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::health::{self, Health, Watcher};
use crate::index::{IndexReader, IndexStats};
use crate::schedule::ScanKind;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `folder` label of `/trigger`'s folder (`[watch]`).
#[cfg(test)]
const FOLDER: &str = crate::folder::DEFAULT;

/// Buckets (seconds) of the request and commit latency histograms: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Buckets (seconds) of the scan duration histogram: 10 ms to an hour.
const SCAN_BUCKETS: [f64; 10] = [0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// Where `inotify_watches_limit` comes from.
const MAX_USER_WATCHES: &str = "/proc/sys/fs/inotify/max_user_watches";

/// A latency histogram in seconds (the buckets of [`LATENCY_BUCKETS`]); clones share it.
#[derive(Debug, Clone)]
pub struct Seconds(Histogram);

impl Default for Seconds {
    fn default() -> Self {
        Seconds(Histogram::new(LATENCY_BUCKETS))
    }
}

impl Seconds {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// The route family a request went to, as the `route` label shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/trigger` and `/watches/NAME/trigger`
    Trigger,
    /// `/watches/NAME/batch`
    Batch,
    /// `/watches/NAME/files` (list, delete)
    Files,
    /// `/watches/NAME/properties`
    Properties,
    /// `/watches/NAME/content`
    Content,
    /// `/watches/NAME/wait`
    Wait,
    /// `/watches/NAME/move`
    Move,
    /// `/watches/NAME/subscriptions` and `/watches/NAME/subscriptions/ID`
    Subscriptions,
    /// `/watches/NAME/waits` and `/watches/NAME/waits/ID`
    Waits,
    /// `/watches/NAME/consumers` (list) and `/watches/NAME/consumers/C` (delete)
    Consumers,
    /// `/watches` and any other folder route
    Watches,
    /// `/openapi.json`
    OpenApi,
    /// `/healthz`
    Healthz,
    /// `/metrics`
    Metrics,
    /// Any other path (a `404`): one value, so a scanner cannot blow up the label set.
    Other,
}

impl Route {
    /// The route of a request path. A folder's routes are labelled by operation, never by
    /// the folder's name, so the label set stays bounded.
    pub fn of(path: &str) -> Route {
        if let Some(rest) = path.strip_prefix("/watches/") {
            return match rest.split_once('/').map_or("", |(_, op)| op) {
                "trigger" => Route::Trigger,
                "batch" => Route::Batch,
                "files" => Route::Files,
                "properties" => Route::Properties,
                "content" => Route::Content,
                "wait" => Route::Wait,
                "move" => Route::Move,
                op if op == "subscriptions" || op.starts_with("subscriptions/") => {
                    Route::Subscriptions
                }
                op if op == "waits" || op.starts_with("waits/") => Route::Waits,
                op if op == "consumers" || op.starts_with("consumers/") => Route::Consumers,
                _ => Route::Watches,
            };
        }
        match path {
            "/trigger" => Route::Trigger,
            "/watches" => Route::Watches,
            "/openapi.json" => Route::OpenApi,
            "/healthz" => Route::Healthz,
            "/metrics" => Route::Metrics,
            _ => Route::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Route::Trigger => "trigger",
            Route::Batch => "batch",
            Route::Files => "files",
            Route::Properties => "properties",
            Route::Content => "content",
            Route::Wait => "wait",
            Route::Move => "move",
            Route::Subscriptions => "subscriptions",
            Route::Waits => "waits",
            Route::Consumers => "consumers",
            Route::Watches => "watches",
            Route::OpenApi => "openapi",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FolderLabels {
    folder: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FolderNameLabels {
    folder: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

/// Where lost watcher events were lost, as the `source` label of
/// `filetrigger_watch_overflows_total` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The kernel's inotify queue overflowed.
    Kernel,
    /// Our channel from the watcher thread was full.
    Queue,
}

fn kind_label(kind: ScanKind) -> KindLabels {
    KindLabels {
        kind: match kind {
            ScanKind::Full => "full",
            ScanKind::Subtree => "subtree",
        },
    }
}

fn scan_histogram() -> Histogram {
    Histogram::new(SCAN_BUCKETS)
}

/// The daemon's metrics. One per daemon, shared by the routes and discovery.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    poll_seconds: Seconds,
    sent_bytes: Family<RouteLabels, Counter>,
    offered: Family<FolderLabels, Counter>,
    overflows: Family<SourceLabels, Counter>,
    rescans: Counter,
    scan_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    scan_files: Family<KindLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The registry, with the values read at scrape time from `health` and the index
    /// behind `reader` (the one folder [`FOLDER`]).
    #[cfg(test)]
    pub fn new(health: Arc<Health>, reader: IndexReader) -> Metrics {
        Metrics::for_folders(vec![(FOLDER.to_string(), health, reader)])
    }

    /// The registry, with the values read at scrape time from each folder's (name,
    /// status, index reader); the first one's watcher and scans are shown. A daemon
    /// serves at least one folder (the configuration refuses none).
    pub(crate) fn for_folders(folders: Vec<(String, Arc<Health>, IndexReader)>) -> Metrics {
        let mut registry = Registry::with_prefix("filetrigger");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status code (polls are route=\"trigger\").",
            requests.clone(),
        );
        let poll_seconds = Seconds::default();
        registry.register(
            "poll_duration_seconds",
            "Time to answer a GET /trigger, from the request to the response head.",
            poll_seconds.0.clone(),
        );
        let sent_bytes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_sent_bytes",
            "Response body bytes handed to the connection (their Content-Length), by route.",
            sent_bytes.clone(),
        );
        let offered = Family::<FolderLabels, Counter>::default();
        registry.register(
            "files_offered",
            "Files offered to a poller (200 answers of GET /trigger), by folder.",
            offered.clone(),
        );
        for (name, _, _) in &folders {
            let _ = offered.get_or_create(&FolderLabels {
                folder: name.clone(),
            });
        }
        let overflows = Family::<SourceLabels, Counter>::default();
        registry.register(
            "watch_overflows",
            "Times watcher events were lost (source=\"kernel\": the inotify queue overflowed; \"queue\": the daemon's own queue was full); each is followed by a full rescan.",
            overflows.clone(),
        );
        for source in ["kernel", "queue"] {
            let _ = overflows.get_or_create(&SourceLabels { source });
        }
        let rescans = Counter::default();
        registry.register(
            "rescans",
            "Full scans started after the start-up scan (periodic, after lost events or errors, to confirm many new files).",
            rescans.clone(),
        );
        let scan_seconds: Family<KindLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(scan_histogram);
        registry.register(
            "scan_duration_seconds",
            "Time a scan took to walk its tree, by kind (full, subtree); _count is the number of scans.",
            scan_seconds.clone(),
        );
        let scan_files = Family::<KindLabels, Counter>::default();
        registry.register(
            "scan_files",
            "Files walked by scans, by kind (full, subtree).",
            scan_files.clone(),
        );
        for kind in [ScanKind::Full, ScanKind::Subtree] {
            let _ = scan_seconds.get_or_create(&kind_label(kind));
            let _ = scan_files.get_or_create(&kind_label(kind));
        }
        if let Some((_, _, reader)) = folders.first() {
            registry.register(
                "index_commit_duration_seconds",
                "Time an index write transaction took to commit.",
                reader.stats().commit_seconds().0.clone(),
            );
        }
        registry.register_collector(Box::new(Live { folders }));
        Metrics {
            registry,
            requests,
            poll_seconds,
            sent_bytes,
            offered,
            overflows,
            rescans,
            scan_seconds,
            scan_files,
        }
    }

    /// Records an answered request: its route, status, time to the response head and body
    /// length (when known).
    pub fn answered(
        &self,
        route: Route,
        folder: &str,
        status: u16,
        took: Duration,
        body: Option<u64>,
    ) {
        let labels = RequestLabels {
            route: route.as_str(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        if let Some(n) = body.filter(|n| *n > 0) {
            self.sent_bytes
                .get_or_create(&RouteLabels {
                    route: route.as_str(),
                })
                .inc_by(n);
        }
        if route == Route::Trigger {
            self.poll_seconds.observe(took);
            if status == 200 {
                self.offered
                    .get_or_create(&FolderLabels {
                        folder: folder.to_string(),
                    })
                    .inc();
            }
        }
    }

    /// Records watcher events lost.
    pub fn overflow(&self, source: Overflow) {
        let source = match source {
            Overflow::Kernel => "kernel",
            Overflow::Queue => "queue",
        };
        self.overflows.get_or_create(&SourceLabels { source }).inc();
    }

    /// Records a full scan started after the start-up scan.
    pub fn rescan(&self) {
        self.rescans.inc();
    }

    /// Records a scan's walk: its kind, how long it took and how many files it walked.
    pub fn scanned(&self, kind: ScanKind, took: Duration, files: u64) {
        let kind = kind_label(kind);
        self.scan_seconds
            .get_or_create(&kind)
            .observe(took.as_secs_f64());
        self.scan_files.get_or_create(&kind).inc_by(files);
    }

    /// Every metric in the Prometheus text format. Reads `/proc` (blocking): call it off
    /// the async workers.
    ///
    /// # Errors
    /// Only if formatting fails, which writing to a `String` does not.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The values read from their owners at each scrape.
#[derive(Debug)]
struct Live {
    /// Each folder's name, status and index reader; at least one.
    folders: Vec<(String, Arc<Health>, IndexReader)>,
}

/// One gauge (or counter) family written by hand: a descriptor, then one sample per label
/// set.
fn samples<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(L, V)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        metric.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

/// One gauge without labels.
fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

impl Collector for Live {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((_, first, reader)) = self.folders.first() else {
            return Ok(());
        };
        let stats: &IndexStats = reader.stats();
        let label = |name: &String| FolderNameLabels {
            folder: name.clone(),
        };
        let indexed: Vec<_> = self
            .folders
            .iter()
            .map(|(name, _, r)| (label(name), r.files()))
            .collect();
        samples(
            &mut e,
            "files_indexed",
            "Files in the index (each offered once, in stamp order), by folder.",
            &indexed,
        )?;
        let pending: Vec<_> = self
            .folders
            .iter()
            .map(|(name, h, _)| (label(name), h.pending()))
            .collect();
        samples(
            &mut e,
            "files_pending",
            "Files seen but not yet complete (settling, or written to), by folder.",
            &pending,
        )?;
        let serving = self
            .folders
            .iter()
            .all(|(_, h, _)| health::status(h, stats).0);
        let health = first;
        gauge(
            &mut e,
            "healthy",
            "1 while /healthz answers 200, 0 while it answers 503 (starting, index failing, watched directory unavailable).",
            u64::from(serving),
        )?;
        let now = health.watcher();
        let modes: Vec<(ModeLabels, u64)> = [
            Watcher::Starting,
            Watcher::Inotify,
            Watcher::Poll,
            Watcher::Degraded,
        ]
        .into_iter()
        .map(|w| (ModeLabels { mode: w.as_str() }, u64::from(w == now)))
        .collect();
        samples(
            &mut e,
            "watcher_mode",
            "1 for the watcher's current mode (starting, inotify, poll, degraded: part of the tree past the watch limit is polled), 0 for the others.",
            &modes,
        )?;
        let progress = health.scan().now();
        gauge(
            &mut e,
            "scan_running",
            "1 while a full scan walks the tree.",
            u64::from(progress.is_some()),
        )?;
        gauge(
            &mut e,
            "scan_walked_directories",
            "Directories the running full scan has read so far (0 when none runs).",
            progress.map_or(0, |p| p.directories),
        )?;
        gauge(
            &mut e,
            "scan_walked_files",
            "Files the running full scan has walked so far (0 when none runs).",
            progress.map_or(0, |p| p.files),
        )?;
        if let Some(at) = health.last_rescan() {
            gauge(
                &mut e,
                "last_full_scan_timestamp_seconds",
                "When the last full scan finished walking the tree (Unix time).",
                at.0 as f64 / 1e9,
            )?;
        }
        gauge(
            &mut e,
            "inotify_watches",
            "inotify watches this daemon holds (one per watched directory; 0 in poll mode).",
            inotify_watches(),
        )?;
        if let Some(limit) = read_u64(MAX_USER_WATCHES) {
            gauge(
                &mut e,
                "inotify_watches_limit",
                "fs.inotify.max_user_watches: the watches one user may hold, over all its processes.",
                limit,
            )?;
        }
        e.encode_descriptor(
            "index_commit_failures",
            "Index write transactions that failed (a full or read-only state.dir); polls answer 503 meanwhile.",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
            &stats.commit_failures(),
            None,
        )?;
        Ok(())
    }
}

/// A number in a file of `/proc`.
fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The inotify watches this process holds: the `inotify wd:` lines of the fdinfo of each
/// of its inotify descriptors (the kernel's own count; the watcher does not tell).
fn inotify_watches() -> u64 {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut n = 0u64;
    for fd in fds.flatten() {
        let is_inotify = std::fs::read_link(fd.path())
            .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify");
        if !is_inotify {
            continue;
        }
        let info = std::path::Path::new("/proc/self/fdinfo").join(fd.file_name());
        if let Ok(text) = std::fs::read(info) {
            n += text
                .split(|b| *b == b'\n')
                .filter(|line| line.starts_with(b"inotify wd:"))
                .count() as u64;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use crate::stamp::SystemClock;

    #[test]
    fn names_follow_the_conventions_and_every_family_is_there_before_any_traffic() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let m = Metrics::new(Arc::new(Health::default()), index.reader());
        m.answered(
            Route::Trigger,
            FOLDER,
            200,
            Duration::from_millis(2),
            Some(10),
        );
        m.answered(
            Route::Trigger,
            FOLDER,
            202,
            Duration::from_millis(1),
            Some(0),
        );
        m.overflow(Overflow::Kernel);
        m.scanned(ScanKind::Full, Duration::from_secs(2), 5);
        let text = m.render().unwrap();
        for line in [
            "# TYPE filetrigger_http_requests_total counter",
            "filetrigger_http_requests_total{route=\"trigger\",status=\"200\"} 1",
            "filetrigger_http_requests_total{route=\"trigger\",status=\"202\"} 1",
            "filetrigger_http_sent_bytes_total{route=\"trigger\"} 10",
            "filetrigger_files_offered_total{folder=\"default\"} 1",
            "filetrigger_poll_duration_seconds_count 2",
            "filetrigger_watch_overflows_total{source=\"kernel\"} 1",
            "filetrigger_watch_overflows_total{source=\"queue\"} 0",
            "filetrigger_scan_files_total{kind=\"full\"} 5",
            "filetrigger_scan_duration_seconds_count{kind=\"full\"} 1",
            "filetrigger_files_indexed{folder=\"default\"} 0",
            "filetrigger_watcher_mode{mode=\"starting\"} 1",
            "filetrigger_healthy 0",
            "filetrigger_index_commit_failures_total 0",
            "# TYPE filetrigger_index_commit_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn webhook_routes_are_labelled_by_operation_never_by_id() {
        for (path, want) in [
            ("/watches/default/subscriptions", "subscriptions"),
            (
                "/watches/docs/subscriptions/3f9c2a7d41e08b65",
                "subscriptions",
            ),
            ("/watches/default/waits", "waits"),
            ("/watches/default/waits/9a1e", "waits"),
            ("/watches/default/subscriptionsX", "watches"),
        ] {
            assert_eq!(Route::of(path).as_str(), want, "{path}");
        }
    }
}
