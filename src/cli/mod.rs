//! The command line: `filetrigger [serve]`, `check`, `status`, `poll`, `consumers`,
//! `openapi`, and the hidden `generate-assets` that writes the shell completions and
//! manual pages.
//!
//! Owns: the clap definition (one source for `--help`, the completions and the man pages),
//! running the administrator's commands and their exit codes, and the settings they
//! read to find the daemon.
//! Does not own: serving (`main` calls [`crate::run`]), the HTTP exchange it speaks as a
//! client (the daemon's `routes` define it), or what each check means (`config`, `auth`,
//! `tls`, `index` decide; `check` only asks them).

mod assets;
mod check;
mod client;
mod consumers;
mod poll;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

pub use client::ClientError;

/// A file-arrival polling trigger for Azure Logic Apps.
///
/// Without a command, runs the daemon (`serve`). The other commands help the person who
/// runs it: `check` the settings before a start, ask a running daemon for its `status`,
/// and `poll` it the way a workflow does.
#[derive(Parser, Debug)]
#[command(name = "filetrigger", version, about, long_about)]
pub struct Cli {
    /// TOML file with settings (see /usr/share/doc/filetrigger/default.toml or
    /// config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it.
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The sub-commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: watch, index, serve the trigger (the default).
    Serve,
    /// Check the settings and everything they name, without serving.
    ///
    /// Loads the settings exactly as serve does, then checks the watched directory (exists,
    /// can be listed by the user running check), state.dir (writable; the index opens
    /// read-only, or is in use by a running daemon), the authentication and TLS files, and
    /// that server.listen is free. The index is never modified. Prints one line per problem;
    /// exit status 0 when all is well, 2 otherwise. Run it as the service user to check
    /// that user's access.
    Check,
    /// Ask the running daemon how it is (its /healthz) and print a short summary.
    ///
    /// Exit status 0 when it serves, 1 when it answers but does not serve (starting, index
    /// failing, watched directory unavailable), 3 when it does not answer.
    Status(Remote),
    /// Poll the running daemon's trigger as Azure Logic Apps does; one JSON line per file.
    ///
    /// The first call carries no triggerState (or --since); then it follows Location and
    /// waits Retry-After seconds, as the workflow engine does, and prints each file's
    /// properties as one JSON line on stdout. Without --follow it stops once nothing more
    /// waits (a 202, or a 200 whose Retry-After is not 0) and prints on stderr the --since
    /// that resumes there; with --follow it keeps polling until Ctrl-C (SIGINT) or SIGTERM,
    /// then exits 0.
    Poll(PollArgs),
    /// List or delete a folder's named consumers (the positions kept for `consumer=NAME`).
    ///
    /// `list` prints one line per consumer: its name, its position and how many files wait
    /// behind it; `delete NAME` forgets one (its next first call starts at "now"). Exit
    /// status 0 when done, 1 when the daemon refused (no such consumer or folder), 2 for
    /// unusable settings, 3 when it does not answer.
    Consumers(ConsumersArgs),
    /// Print the connector's OpenAPI (Swagger 2.0) definition for these settings.
    ///
    /// The same document the daemon serves at /openapi.json, without starting it: the host
    /// comes from --url, else server.public_url, else server.listen; the security
    /// definitions from auth.basic_file and auth.api_key_file. Import the output in the
    /// custom-connector wizard (see connector/README.md).
    Openapi {
        /// Base URL clients reach the daemon at, e.g. http://fileserver:8080 [default:
        /// server.public_url, else http(s)://server.listen]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Write the shell completions and manual pages (for packaging).
    #[command(hide = true)]
    GenerateAssets {
        /// Directory to write completions/ and man/ into.
        dir: PathBuf,
    },
}

/// How to reach the running daemon.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Base URL of the daemon, e.g. http://127.0.0.1:8080 [default: server.public_url,
    /// else http(s)://server.listen]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// HTTP Basic credentials. A password cannot be recovered from the htpasswd file, so
    /// give it here or, better (not visible in `ps`), in the environment variable.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "FILETRIGGER_USER",
        hide_env_values = true
    )]
    pub user: Option<String>,
    /// API key, sent in auth.api_key_header [default: the first key in auth.api_key_file,
    /// when this user can read it]
    #[arg(
        long,
        value_name = "KEY",
        env = "FILETRIGGER_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// PEM CA certificates to trust for https, besides the system's and server.tls.cert.
    #[arg(long, value_name = "PATH")]
    pub cacert: Option<PathBuf>,
}

/// `poll`'s options.
#[derive(Args, Debug, Clone)]
pub struct PollArgs {
    /// How to reach the daemon.
    #[command(flatten)]
    pub remote: Remote,
    /// Start from this cursor (RFC 3339, e.g. 2026-11-24T00:00:00Z): files indexed after it.
    #[arg(long, value_name = "TIMESTAMP")]
    pub since: Option<String>,
    /// Keep polling after a 202 (nothing new), until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Print each file's content too (base64 in "content"), not only its properties.
    #[arg(long)]
    pub content: bool,
}

/// `consumers`' options.
#[derive(Args, Debug, Clone)]
pub struct ConsumersArgs {
    /// How to reach the daemon.
    #[command(flatten)]
    pub remote: Remote,
    /// The folder (`default` is `[watch]`'s).
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub folder: String,
    /// What to do.
    #[command(subcommand)]
    pub action: ConsumersAction,
}

/// `consumers list` or `consumers delete NAME`.
#[derive(Subcommand, Debug, Clone)]
pub enum ConsumersAction {
    /// List the folder's consumers: name, position, files waiting.
    List,
    /// Delete a consumer (forget its position).
    Delete {
        /// The consumer's name.
        name: String,
    },
}

/// Runs one of the administrator's commands (not `serve`) and gives its exit code.
pub fn run(command: Command, config: Option<&Path>) -> ExitCode {
    match command {
        // `main` serves; it never hands `serve` here.
        Command::Serve => {
            eprintln!("filetrigger: serve is not a client command");
            ExitCode::from(1)
        }
        Command::Check => check::run(config),
        Command::Status(remote) => with_runtime(|| status::run(config, remote)),
        Command::Poll(args) => with_runtime(|| poll::run(config, args)),
        Command::Consumers(args) => with_runtime(|| consumers::run(config, args)),
        Command::Openapi { url } => openapi(config, url),
        Command::GenerateAssets { dir } => assets::run(&dir),
    }
}

/// `openapi`: prints the document; exit status 2 for a configuration error.
fn openapi(config: Option<&Path>, url: Option<String>) -> ExitCode {
    // The document's host and basePath come from it: the rules of server.public_url.
    let url = match url.as_deref().map(crate::config::base_url).transpose() {
        Ok(url) => url,
        Err(problem) => {
            eprintln!("filetrigger: openapi --url: {problem}");
            return ExitCode::from(2);
        }
    };
    let remote = Remote {
        url,
        user: None,
        api_key: None,
        cacert: None,
    };
    let settings = match client_settings(config, &remote) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!("filetrigger: openapi needs the settings (auth and folders come from them)");
            return ExitCode::from(2);
        }
        Err(code) => return code,
    };
    let base = match base_url(Some(&settings), &remote) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("filetrigger: openapi: {e}");
            return ExitCode::from(2);
        }
    };
    let doc = crate::openapi::Spec::new(&settings).document(&base);
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => {
            use std::io::Write;
            // Not println!: it panics when stdout is a closed pipe (`| head`).
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{text}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(1),
                Err(e) => {
                    eprintln!("filetrigger: openapi: cannot write the document: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("filetrigger: openapi: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs an async command on a small runtime.
fn with_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eprintln!("filetrigger: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

/// The settings for a client command: as serve loads them; a bad configuration is
/// reported and only tolerated when `--url` says where the daemon is.
fn client_settings(config: Option<&Path>, remote: &Remote) -> Result<Option<Settings>, ExitCode> {
    match crate::config::load(config, std::env::vars()) {
        Ok(s) => Ok(Some(s)),
        Err(e) if remote.url.is_some() => {
            eprintln!("filetrigger: note: settings not used ({e})");
            Ok(None)
        }
        Err(e) => {
            eprintln!("filetrigger: configuration error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// The daemon's base URL (no trailing `/`): `--url`, else `server.public_url`, else
/// `server.listen` (an unspecified address means this host's loopback).
fn base_url(settings: Option<&Settings>, remote: &Remote) -> Result<String, String> {
    if let Some(url) = &remote.url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let Some(s) = settings else {
        return Err("no settings and no --url".into());
    };
    if let Some(url) = &s.server.public_url {
        return Ok(url.clone());
    }
    let mut addr = s.server.listen;
    if addr.port() == 0 {
        return Err(format!(
            "server.listen = {addr} picks a port at start: give --url with the port the daemon logged"
        ));
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let scheme = if s.server.tls.cert.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{addr}"))
}

/// Builds the HTTP client for `status` and `poll`: credentials and trusted CAs.
fn client(settings: Option<&Settings>, remote: &Remote) -> Result<client::Client, ClientError> {
    let mut c = client::Client::new();
    if let Some(user) = &remote.user {
        c.basic(user);
    }
    let header = settings
        .map(|s| s.auth.api_key_header.clone())
        .unwrap_or_else(|| "X-API-Key".into());
    let key = remote.api_key.clone().or_else(|| {
        let path = settings?.auth.api_key_file.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
    });
    if let Some(key) = key {
        c.header(&header, &key)?;
    }
    let mut cas: Vec<&Path> = Vec::new();
    if let Some(cert) = settings.and_then(|s| s.server.tls.cert.as_deref()) {
        cas.push(cert);
    }
    if let Some(ca) = &remote.cacert {
        cas.push(ca);
    }
    c.trust(&cas)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_serve_and_config_goes_anywhere() {
        let cli = Cli::try_parse_from(["filetrigger", "--config", "/x.toml"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["filetrigger", "check", "--config", "/x.toml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check)));
        assert_eq!(cli.config.as_deref(), Some(Path::new("/x.toml")));
    }

    #[test]
    fn the_base_url_comes_from_the_listen_address() {
        let remote = Remote {
            url: None,
            user: None,
            api_key: None,
            cacert: None,
        };
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let s = crate::config::load(None, env(&[])).unwrap();
        assert_eq!(
            base_url(Some(&s), &remote).unwrap(),
            "http://127.0.0.1:8080"
        );
        let s = crate::config::load(
            None,
            env(&[
                ("FILETRIGGER__SERVER__LISTEN", "[::]:9000"),
                ("FILETRIGGER__AUTH__ALLOW_ANONYMOUS", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(base_url(Some(&s), &remote).unwrap(), "http://[::1]:9000");
        let s = crate::config::load(
            None,
            env(&[("FILETRIGGER__SERVER__PUBLIC_URL", "https://gw.example/ft/")]),
        )
        .unwrap();
        assert_eq!(
            base_url(Some(&s), &remote).unwrap(),
            "https://gw.example/ft"
        );
    }
}
