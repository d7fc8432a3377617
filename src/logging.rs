//! Log lines: the `tracing` subscriber the daemon installs, in the shape its destination
//! wants.
//!
//! Owns: the choice of format (`log.format`: text or one JSON object per line), journald's
//! priority prefixes (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug and trace) and no
//! timestamp of our own in text lines when stderr goes to the journal (`JOURNAL_STREAM`
//! set), colours only on a terminal, and the level filter (`RUST_LOG`, default `info`).
//! Does not own: what is logged (each module logs its own events, with structured fields
//! and never a secret or a query string), or the CLI's own output (`cli`).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Where the log goes, as far as its shape is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
    pub journald: bool,
    /// stderr is a terminal (colours are used).
    pub terminal: bool,
}

impl Destination {
    /// From the process's environment and stderr.
    pub fn detect() -> Destination {
        Destination {
            journald: std::env::var_os("JOURNAL_STREAM").is_some(),
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

/// journald's priority prefix for a level (syslog priorities).
pub fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// Wraps an event format with journald's priority prefix.
struct Prefixed<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Installs the global subscriber on stderr. Call once, in `main`.
pub fn install(format: LogFormat, to: Destination) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init`: a second call (tests) keeps the first subscriber.
    let _ = match (format, to.journald) {
        (LogFormat::Text, false) => builder.with_ansi(to.terminal).try_init(),
        (LogFormat::Text, true) => builder
            .with_ansi(false)
            .event_format(Prefixed(format::format().without_time().with_ansi(false)))
            .try_init(),
        // The JSON object keeps its timestamp: a shipper reads it from the object.
        (LogFormat::Json, false) => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(format::format().json().flatten_event(true))
            .try_init(),
        (LogFormat::Json, true) => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(Prefixed(format::format().json().flatten_event(true)))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_has_its_syslog_priority() {
        assert_eq!(priority(&Level::ERROR), "<3>");
        assert_eq!(priority(&Level::WARN), "<4>");
        assert_eq!(priority(&Level::INFO), "<6>");
        assert_eq!(priority(&Level::DEBUG), "<7>");
        assert_eq!(priority(&Level::TRACE), "<7>");
    }
}
