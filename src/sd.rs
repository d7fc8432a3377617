//! The systemd notification protocol (`Type=notify`): `READY=1`, `STOPPING=1`, the
//! `STATUS=` line `systemctl status` shows, and watchdog pings.
//!
//! Owns: sending datagrams to `$NOTIFY_SOCKET` (a path, or an abstract name starting with
//! `@`), and the watchdog interval from `$WATCHDOG_USEC`/`$WATCHDOG_PID`. `main` reads the
//! environment once and passes a [`Notifier`] down.
//! Does not own: when the daemon is ready (`discover` decides, `lib` reports it).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where to send notifications; does nothing when not started by systemd.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn none() -> Notifier {
        Notifier::default()
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Notifier {
        let socket = env("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let for_us = env("WATCHDOG_PID")
            .map(|p| p.trim() == std::process::id().to_string())
            .unwrap_or(true);
        let watchdog = env("WATCHDOG_USEC")
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// How often systemd wants a watchdog ping, if at all.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sets the one-line status `systemctl status` shows (`STATUS=`; a newline in `text`
    /// would end the field, so it is replaced by a space).
    pub fn status(&self, text: &str) {
        self.notify(&format!("STATUS={}", text.replace('\n', " ")));
    }

    /// Sends one notification (`READY=1`, `WATCHDOG=1`, ...). Failures are logged.
    pub fn notify(&self, state: &str) {
        let Some(socket) = &self.socket else {
            return;
        };
        let result = UnixDatagram::unbound().and_then(|s| {
            if let Some(name) = socket.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                s.send_to_addr(state.as_bytes(), &addr)
            } else {
                s.send_to(state.as_bytes(), PathBuf::from(socket))
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, socket = %socket, "cannot notify systemd");
        }
    }
}
