//! filetrigger: a file-arrival polling trigger for Azure Logic Apps.
//!
//! The daemon watches one or more directories (the folder `default` of `[watch]` and each
//! `[folders.NAME]`), gives every completed file version its own index stamp in a
//! persistent store, and serves `GET /trigger` (and `/watches/NAME/trigger`) in the
//! polling-trigger shape Logic Apps expects. See `README.md` for the map from each concern to its module.

pub(crate) mod auth;
pub(crate) mod cleanup;
pub mod cli;
pub mod config;
pub(crate) mod confine;
mod cursor;
pub(crate) mod deliver;
pub(crate) mod discover;
pub mod error;
pub(crate) mod filter;
pub(crate) mod folder;
pub mod health;
pub(crate) mod hooks;
pub mod index;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod offer;
pub(crate) mod openapi;
pub(crate) mod progress;
pub mod routes;
pub mod scan;
pub(crate) mod schedule;
pub mod sd;
mod server;
pub(crate) mod settle;
pub mod shutdown;
pub mod stamp;
pub(crate) mod swap;
pub(crate) mod tls;
pub(crate) mod watch;
pub(crate) mod writers;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::Settings;
pub use crate::error::Error;

/// Queue between discovery and the index writer.
const WRITER_QUEUE: usize = 8192;
/// Queue between notify's thread and discovery; when full, events are dropped and a
/// rescan is scheduled.
const WATCH_QUEUE: usize = 65_536;

/// Binds `server.listen` and runs the daemon until `token` is cancelled.
///
/// # Errors
/// See [`start`]; also [`Error::Bind`].
pub async fn run(
    settings: Settings,
    token: CancellationToken,
    notifier: sd::Notifier,
) -> Result<(), Error> {
    let addr = settings.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    start(settings, listener, token, notifier).await
}

/// Runs the daemon on a bound listener until `token` is cancelled: opens the index,
/// starts a watcher and a discovery per watched folder, serves HTTP, then shuts down in
/// order (HTTP drains, discovery stops, the writer commits what is queued, the index
/// closes).
///
/// # Errors
/// [`Error::Config`] for unusable directories, [`Error::Index`] when the index cannot be
/// opened (in use by another process, incompatible, unreadable), [`Error::Watch`] when
/// the watch cannot start, [`Error::Internal`] if a subsystem fails while running.
pub async fn start(
    settings: Settings,
    listener: TcpListener,
    token: CancellationToken,
    notifier: sd::Notifier,
) -> Result<(), Error> {
    settings.prepare_dirs()?;
    // Before any writer probe: a lease break's SIGIO must not end the process.
    if let Err(e) = writers::init() {
        tracing::warn!(error = %e, "cannot ignore SIGIO; writer probes are off");
    }
    let auth = auth::Auth::load(&settings.auth)?;
    let tls = Arc::new(swap::Swap::new(tls::load(&settings.server.tls)?));
    let watched = settings.watched();
    let mut roots = Vec::with_capacity(watched.len());
    for f in &watched {
        let root =
            std::fs::canonicalize(&f.watch.dir).map_err(|e| error::ConfigError::Invalid {
                key: f.dir_key(),
                problem: format!("cannot resolve {}: {e}", f.watch.dir.display()),
            })?;
        roots.push((f.dir_key(), root));
    }
    // Again on the resolved directories: a symlink can make two names one tree.
    config::check_overlap(&roots)?;
    let names: Vec<&str> = watched.iter().map(|f| f.name.as_str()).collect();
    let index =
        index::Index::open_folders(&settings.state.dir, Arc::new(stamp::SystemClock), &names)?;
    tracing::info!(
        index = %index.path().display(),
        files = index.stats().files(),
        folders = watched.len(),
        "index open"
    );
    let (writer, writer_thread) = index
        .start_writer(WRITER_QUEUE)
        .map_err(|e| Error::Internal(format!("cannot start the index writer: {e}")))?;
    let mut folders = Vec::with_capacity(watched.len());
    let mut watching = Vec::with_capacity(watched.len());
    for (f, (_, root)) in watched.iter().zip(roots) {
        let (Some(reader), Some(folder_writer)) =
            (index.reader_for(&f.name), writer.for_folder(&f.name))
        else {
            return Err(Error::Internal(format!(
                "the index did not open the folder {}",
                f.name
            )));
        };
        let mut exclude = f.watch.exclude.clone();
        if f.watch.after_delivery == config::AfterDelivery::Move {
            // Moved files are never offered again.
            exclude.push(cleanup::exclude_pattern(&f.watch.after_delivery_dir));
        }
        let filter = Arc::new(filter::Filter::new(&f.watch.include, &exclude)?);
        let poll = f.watch.mode == config::WatchMode::Poll;
        let (watch_handle, watch_rx) = if poll {
            watch::disabled()
        } else {
            watch::start(&root, WATCH_QUEUE).map_err(|source| Error::Watch {
                path: root.clone(),
                source,
            })?
        };
        tracing::info!(folder = %f.name, dir = %root.display(), recursive = f.watch.recursive, "watching");
        let folder = Arc::new(folder::Folder {
            name: f.name.clone(),
            local: confine::is_local_fs(&root),
            root: root.clone(),
            reader: reader.clone(),
            max_content: f.max_content_bytes,
            recursive: f.watch.recursive,
            health: Arc::new(health::Health::default()),
            writer: folder_writer.clone(),
        });
        let health = folder.health.clone();
        folders.push(folder);
        watching.push((
            f,
            root,
            filter,
            reader,
            folder_writer,
            health,
            watch_handle,
            watch_rx,
        ));
    }

    let outbound = deliver::Outbound::new(&settings.webhook)?;
    let hooks_token = token.child_token();
    let hooks = hooks::Hooks::start(
        hooks::HooksDeps {
            outbound,
            folders: folders.clone(),
            records: index.reader(),
            writer: writer.clone(),
            first_cursor: cursor::FirstCursor::new(index.clock(), writer.clone()),
            settings: settings.webhook.clone(),
            batch_max_bytes: settings.trigger.batch_max_bytes,
            max_wait_s: settings.actions.max_wait_s,
        },
        hooks_token,
    )
    .await?;
    let state = Arc::new(routes::AppState::with_folders(
        &settings,
        &index,
        writer.clone(),
        folders,
        auth,
        Some(hooks.clone()),
    ));
    let health = state.health.clone();
    let discover_token = token.child_token();
    let mut discoveries = tokio::task::JoinSet::new();
    let mut watch_handles = Vec::with_capacity(watching.len());
    let several = watching.len() > 1;
    let shares = discover::SettlerShare::split(watching.len());
    let scan_pool = discover::ScanPool::start();
    for ((f, root, filter, reader, writer, health, watch_handle, watch_rx), share) in
        watching.into_iter().zip(shares)
    {
        let w = &f.watch;
        let poll = w.mode == config::WatchMode::Poll;
        let d = discover::Discover {
            root,
            recursive: w.recursive,
            settle: Duration::from_millis(w.settle_ms),
            timing: crate::settle::Timing::from(w),
            two_scans: poll && w.poll_confirm == crate::config::PollConfirm::TwoScans,
            rescan_every: Duration::from_secs(if poll {
                w.poll_interval_s
            } else {
                w.rescan_interval_s
            }),
            poll,
            poll_every: Duration::from_secs(w.poll_interval_s),
            filter,
            reader,
            writer,
            health,
            metrics: state.metrics.clone(),
            share,
            scan_pool: scan_pool.clone(),
        };
        let run = discover::run(
            d,
            watch_rx,
            watch_handle.dropped.clone(),
            discover_token.clone(),
        );
        // With several folders each discovery's lines say whose they are; one folder's
        // lines stay as they were.
        let span = if several {
            tracing::info_span!("folder", name = %f.name)
        } else {
            tracing::Span::none()
        };
        discoveries.spawn(tracing::Instrument::instrument(run, span));
        watch_handles.push(watch_handle);
    }
    tokio::spawn(reload_on_sighup(
        settings.clone(),
        state.clone(),
        tls.clone(),
        token.clone(),
    ));
    for f in &watched {
        if f.watch.after_delivery == config::AfterDelivery::Keep {
            continue;
        }
        let Some(folder) = state.folder(&f.name) else {
            continue;
        };
        let c = cleanup::Cleanup {
            folder: f.name.clone(),
            root: folder.root.clone(),
            reader: folder.reader.clone(),
            writer: folder.writer.clone(),
            mode: f.watch.after_delivery,
            dir: f.watch.after_delivery_dir.clone(),
            requires: f.watch.after_delivery_requires.clone(),
        };
        let mode = match f.watch.after_delivery {
            config::AfterDelivery::Move => "move",
            _ => "delete",
        };
        tracing::info!(folder = %f.name, mode, requires = ?f.watch.after_delivery_requires, "clean-up after delivery on");
        tokio::spawn(cleanup::run(c, token.clone()));
    }
    if let Some(keep) = settings.state.retention {
        tokio::spawn(prune(writer.clone(), index.clock(), keep, token.clone()));
    }
    tokio::spawn(progress::run(
        health,
        index.reader(),
        notifier.clone(),
        token.clone(),
    ));
    tokio::spawn(report_to_systemd(
        state.clone(),
        notifier.clone(),
        token.clone(),
    ));
    let limits = server::Limits {
        max_connections: settings.server.max_connections,
        header_read_timeout: Duration::from_secs(settings.server.header_read_timeout_s),
        max_header_bytes: settings.server.max_header_bytes,
    };

    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.get().is_some() { "https" } else { "http" };
        let auth = if state.auth.get().is_some() {
            "required"
        } else {
            "off"
        };
        tracing::info!(%addr, %scheme, %auth, "listening");
    }
    let http_token = token.child_token();
    let mut failure = None;
    let server = server::serve(listener, state, tls, limits, http_token.clone());
    tokio::pin!(server);
    tokio::select! {
        _ = &mut server => {}
        Some(done) = discoveries.join_next() => {
            // Discovery also ends cleanly when shutdown was asked for: that is no failure.
            failure = discovery_failure(done, token.is_cancelled());
            http_token.cancel();
            server.await;
        }
    }
    notifier.stopping();
    discover_token.cancel();
    while let Some(done) = discoveries.join_next().await {
        let this = discovery_failure(done, true);
        if failure.is_none() {
            failure = this;
        }
    }
    drop(watch_handles);
    // Webhook deliveries in flight are abandoned (a position moves only after a 2xx, so
    // such a file comes again after the restart, with the same stamp).
    hooks.stop().await;
    // Commit what discovery queued, and stop the writer even if a straggling connection
    // still holds a handle.
    writer.stop().await;
    drop(writer);
    let joined = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        failure.get_or_insert_with(|| "the index writer panicked".into());
    }
    // Off the runtime: tightening a large index that a first scan grew takes seconds.
    if tokio::task::spawn_blocking(move || index.close())
        .await
        .is_err()
    {
        failure.get_or_insert_with(|| "closing the index panicked".into());
    }
    tracing::info!("stopped");
    match failure {
        Some(f) => Err(Error::Internal(f)),
        None => Ok(()),
    }
}

/// What the end of the discovery task means: `None` for a clean stop during shutdown.
fn discovery_failure(
    done: Result<Result<(), error::IndexError>, tokio::task::JoinError>,
    shutting_down: bool,
) -> Option<String> {
    match done {
        Ok(Ok(())) if shutting_down => None,
        Ok(Ok(())) => Some("discovery stopped".to_string()),
        Ok(Err(e)) => Some(format!("discovery failed: {e}")),
        Err(e) => Some(format!("discovery panicked: {e}")),
    }
}

/// On SIGHUP, reloads the TLS certificates and the authentication files; on a failure the
/// old ones stay in force.
async fn reload_on_sighup(
    settings: Settings,
    state: Arc<routes::AppState>,
    tls: Arc<server::TlsConfig>,
    token: CancellationToken,
) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot handle SIGHUP; certificates will not be reloaded");
        return;
    };
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = hup.recv() => {}
        }
        match tls::load(&settings.server.tls) {
            Ok(config) => {
                tls.set(config);
                tracing::info!("SIGHUP: TLS configuration reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the old certificates")
            }
        }
        match auth::Auth::load(&settings.auth) {
            Ok(a) => {
                state.auth.set(a);
                tracing::info!("SIGHUP: authentication files reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: authentication reload failed; keeping the old ones")
            }
        }
    }
}

/// Tells systemd `READY=1` once the start-up scan is done, and pings its watchdog while
/// the runtime runs.
async fn report_to_systemd(
    state: Arc<routes::AppState>,
    notifier: sd::Notifier,
    token: CancellationToken,
) {
    tokio::select! {
        _ = token.cancelled() => return,
        _ = state.wait_ready() => notifier.ready(),
    }
    let Some(every) = notifier.watchdog() else {
        return;
    };
    let mut tick = tokio::time::interval(every / 2);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            // A failing index is not a hung daemon: the writer recovers by itself once
            // state.dir takes writes again, which a restart would not make happen sooner.
            _ = tick.tick() => notifier.watchdog_ping(),
        }
    }
}

/// Drops index entries older than `keep` (`state.retention`), at a tenth of that period
/// (between 1 s and 1 h).
async fn prune(
    writer: index::WriterHandle,
    clock: Arc<stamp::StampClock>,
    keep: Duration,
    token: CancellationToken,
) {
    let every = (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let keep_ns = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = stamp::Stamp(clock.wall_now().0.saturating_sub(keep_ns));
        if writer.send(index::WriteOp::Prune(before)).await.is_err() {
            return;
        }
    }
}
