//! Shutdown on SIGTERM (what systemd sends) and SIGINT.
//!
//! Owns: turning the first of those signals into the cancellation of the root token.
//! Does not own: draining (each subsystem stops on its child token; `server` bounds its
//! drain).

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Installs the handlers now and cancels `token` on the first SIGTERM or SIGINT.
///
/// # Errors
/// The OS error when a handler cannot be installed.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = token.cancelled() => return,
        };
        tracing::info!(signal = name, "shutting down");
        token.cancel();
    });
    Ok(())
}
