//! The `filetrigger` binary: parse the command line; for `serve` (the default) load
//! settings, install logging, run, map the error to an exit code (2 for configuration, 1
//! for anything else). The other commands live in `filetrigger::cli`.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use filetrigger::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => serve(cli.config.as_deref()),
        Some(tool) => filetrigger::cli::run(tool, cli.config.as_deref()),
    }
}

fn serve(config: Option<&Path>) -> ExitCode {
    let settings = match filetrigger::config::load(config, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("filetrigger: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    filetrigger::logging::install(
        settings.log.format,
        filetrigger::logging::Destination::detect(),
    );
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
