//! The systemd notification protocol (`Type=notify`): `READY=1`, `STOPPING=1`,
//! `STATUS=...` and watchdog pings, through the `sd-notify` crate.
//!
//! Owns: whether we were started with `$NOTIFY_SOCKET`, the watchdog interval from
//! `$WATCHDOG_USEC`/`$WATCHDOG_PID`, and sending. `main` reads the environment once and
//! passes a [`Notifier`] down.
//! Does not own: when the daemon is ready (`discover` decides, `lib` reports it), or what
//! a status line says (its caller).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends notifications to systemd; does nothing when not started by systemd.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// `$NOTIFY_SOCKET`, if set.
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        // A zero interval means no watchdog (and would make the ping timer panic).
        let watchdog = sd_notify::watchdog_enabled().filter(|d| !d.is_zero());
        Notifier { socket, watchdog }
    }

    /// How often systemd wants a watchdog ping, if at all.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1`: the start-up scan is done.
    pub fn ready(&self) {
        self.send(&NotifyState::Ready);
    }

    /// `WATCHDOG=1`: still alive.
    pub fn watchdog_ping(&self) {
        self.send(&NotifyState::Watchdog);
    }

    /// `STOPPING=1`: shutting down.
    pub fn stopping(&self) {
        self.send(&NotifyState::Stopping);
    }

    /// `STATUS=text`, shown by `systemctl status`. A line break would start another
    /// assignment, so each one becomes a space.
    pub fn status(&self, text: &str) {
        let one_line = text.replace(['\n', '\r'], " ");
        self.send(&NotifyState::Status(&one_line));
    }

    /// Sends one notification. Failures are logged.
    fn send(&self, state: &NotifyState<'_>) {
        let Some(socket) = &self.socket else {
            return;
        };
        let result = match socket.strip_prefix('@') {
            // sd-notify 0.5 connects to a file-system path only; an abstract socket
            // (`@name`, as older systemd and some container managers hand out) is sent
            // the same text here.
            Some(name) => send_abstract(name, &format!("{state}\n")),
            None => sd_notify::notify(std::slice::from_ref(state)),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, socket = %socket, "cannot notify systemd");
        }
    }
}

/// Sends `msg` to the abstract Unix socket `name`.
fn send_abstract(name: &str, msg: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixDatagram::unbound()?.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;

    /// A notifier for an abstract socket bound here (a path socket is reached through
    /// sd-notify, which reads `$NOTIFY_SOCKET` itself: tests/security.rs covers it).
    fn abstract_pair(tag: &str) -> (Notifier, UnixDatagram) {
        let name = format!("filetrigger-sd-{tag}-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier {
            socket: Some(format!("@{name}")),
            watchdog: None,
        };
        (n, sock)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn each_state_and_a_one_line_status_reach_an_abstract_socket() {
        let (n, sock) = abstract_pair("states");
        n.ready();
        assert_eq!(recv(&sock), "READY=1\n");
        n.status("scanning\n12 files");
        assert_eq!(recv(&sock), "STATUS=scanning 12 files\n");
        n.watchdog_ping();
        assert_eq!(recv(&sock), "WATCHDOG=1\n");
        n.stopping();
        assert_eq!(recv(&sock), "STOPPING=1\n");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::default();
        n.ready();
        n.status("x");
        assert_eq!(n.watchdog(), None);
    }
}
