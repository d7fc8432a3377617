//! The `filetrigger` binary: load settings, install logging, run, map the error to an
//! exit code (2 for configuration, 1 for anything else).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// A file-arrival polling trigger for Azure Logic Apps.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML file with settings (see config/default.toml for every key).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match filetrigger::config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("filetrigger: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("filetrigger: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let token = CancellationToken::new();
        filetrigger::shutdown::cancel_on_signals(token.clone())
            .map_err(|e| filetrigger::Error::Internal(format!("cannot handle signals: {e}")))?;
        let notifier = filetrigger::sd::Notifier::from_env();
        filetrigger::run(settings, token, notifier).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filetrigger: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
