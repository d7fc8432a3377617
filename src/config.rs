//! Settings: loading, layering and validation.
//!
//! Owns: the typed [`Settings`], the three layers (built-in `config/default.toml`, the
//! `--config` file, `FILETRIGGER__SECTION__KEY` environment variables), rejecting unknown
//! keys and bad values with a message that names the key, resolving the watched folders
//! (`[watch]` and each `[folders.NAME]`, which inherits what it does not set:
//! [`Settings::watched`]) and refusing overlapping ones, and preparing the directories.
//! Does not own: what the values mean at run time (each subsystem reads its own section).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Value};
use serde::Deserialize;

use crate::error::ConfigError;

/// The built-in defaults, which also document every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every key there is, `section.key`. `config/default.toml` documents each of them.
pub const KEYS: &[&str] = &[
    "server.listen",
    "server.public_url",
    "server.trusted_proxies",
    "server.max_connections",
    "server.header_read_timeout_s",
    "server.max_header_bytes",
    "server.tls.cert",
    "server.tls.key",
    "server.tls.client_ca",
    "watch.dir",
    "watch.recursive",
    "watch.settle_ms",
    "watch.settle_after_close_ms",
    "watch.max_open_hold_s",
    "watch.include",
    "watch.exclude",
    "watch.rescan_interval_s",
    "watch.mode",
    "watch.poll_interval_s",
    "watch.poll_confirm",
    "watch.after_delivery",
    "watch.after_delivery_dir",
    "watch.after_delivery_requires",
    "state.dir",
    "state.retention",
    "trigger.retry_after_s",
    "trigger.max_content_bytes",
    "trigger.batch_max_bytes",
    "auth.allow_anonymous",
    "auth.basic_file",
    "auth.api_key_file",
    "auth.api_key_header",
    "auth.folders",
    "metrics.public_on_loopback",
    "log.format",
    "actions.allow_write",
    "actions.max_wait_s",
    "webhook.allow_http",
    "webhook.allowed_hosts",
    "webhook.allow_private",
    "webhook.ca_file",
    "webhook.timeout_s",
    "webhook.max_backoff_s",
    "webhook.pause_after_s",
];

/// The keys a `[folders.NAME]` section may set: `dir` (required) and the rest of `[watch]`
/// plus `max_content_bytes` (optional, inherited from `[watch]` and `[trigger]`).
pub const FOLDER_KEYS: &[&str] = &[
    "dir",
    "recursive",
    "settle_ms",
    "settle_after_close_ms",
    "max_open_hold_s",
    "include",
    "exclude",
    "rescan_interval_s",
    "mode",
    "poll_interval_s",
    "poll_confirm",
    "after_delivery",
    "after_delivery_dir",
    "after_delivery_requires",
    "max_content_bytes",
];

/// The name of the folder `[watch]` configures (served at `/trigger` too).
pub const DEFAULT_FOLDER: &str = "default";

/// The whole configuration, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[watch]`
    pub watch: WatchSettings,
    /// `[state]`
    pub state: StateSettings,
    /// `[trigger]`
    pub trigger: TriggerSettings,
    /// `[auth]`
    pub auth: AuthSettings,
    /// `[metrics]`
    pub metrics: MetricsSettings,
    /// `[log]`
    pub log: LogSettings,
    /// `[actions]`
    pub actions: ActionSettings,
    /// `[webhook]`
    pub webhook: WebhookSettings,
    /// `[folders.NAME]`: the named watched folders beside `[watch]`.
    #[serde(default)]
    pub folders: BTreeMap<String, FolderSettings>,
}

/// `[folders.NAME]`: a named watched folder. Every key but `dir` is optional and inherits
/// `[watch]`'s (`max_content_bytes`: `trigger.max_content_bytes`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSettings {
    /// `folders.NAME.dir`
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `folders.NAME.recursive`
    #[serde(default)]
    pub recursive: Option<bool>,
    /// `folders.NAME.settle_ms`
    #[serde(default)]
    pub settle_ms: Option<u64>,
    /// `folders.NAME.settle_after_close_ms`
    #[serde(default)]
    pub settle_after_close_ms: Option<u64>,
    /// `folders.NAME.max_open_hold_s`
    #[serde(default)]
    pub max_open_hold_s: Option<u64>,
    /// `folders.NAME.include`
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// `folders.NAME.exclude`
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// `folders.NAME.rescan_interval_s`
    #[serde(default)]
    pub rescan_interval_s: Option<u64>,
    /// `folders.NAME.mode`
    #[serde(default)]
    pub mode: Option<WatchMode>,
    /// `folders.NAME.poll_interval_s`
    #[serde(default)]
    pub poll_interval_s: Option<u64>,
    /// `folders.NAME.poll_confirm`
    #[serde(default, deserialize_with = "opt_poll_confirm")]
    pub poll_confirm: Option<PollConfirm>,
    /// `folders.NAME.max_content_bytes`
    #[serde(default)]
    pub max_content_bytes: Option<u64>,
    /// `folders.NAME.after_delivery`
    #[serde(default)]
    pub after_delivery: Option<AfterDelivery>,
    /// `folders.NAME.after_delivery_dir`
    #[serde(default)]
    pub after_delivery_dir: Option<String>,
    /// `folders.NAME.after_delivery_requires`
    #[serde(default)]
    pub after_delivery_requires: Option<Vec<String>>,
}

/// One watched folder, resolved: `[watch]` (named [`DEFAULT_FOLDER`]) or a
/// `[folders.NAME]` with what it inherits filled in.
#[derive(Debug, Clone)]
pub struct WatchedFolder {
    /// `default`, or NAME.
    pub name: String,
    /// Where its keys live, for messages: `watch` or `folders.NAME`.
    pub section: String,
    /// Its watch settings (`dir` included).
    pub watch: WatchSettings,
    /// Its `max_content_bytes`.
    pub max_content_bytes: u64,
}

impl WatchedFolder {
    /// `SECTION.dir`, the key that names its directory.
    pub fn dir_key(&self) -> String {
        format!("{}.dir", self.section)
    }
}

/// Whether `name` may name a folder: `[a-z0-9][a-z0-9_-]{0,62}`, not `default`.
pub fn valid_folder_name(name: &str) -> bool {
    let b = name.as_bytes();
    name != DEFAULT_FOLDER
        && (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// `[actions]`: what the connector's actions may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSettings {
    /// `actions.allow_write`: whether the move and delete actions are served.
    pub allow_write: bool,
    /// `actions.max_wait_s`: the longest `timeout` the wait action takes.
    pub max_wait_s: u64,
}

/// `[webhook]`: where the daemon may send webhook deliveries (subscriptions and webhook
/// waits), and how it retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// `webhook.allow_http`: plain `http://` callback URLs are accepted (tests, closed
    /// networks).
    pub allow_http: bool,
    /// `webhook.allowed_hosts`: globs a callback URL's host must match (case-insensitive).
    pub allowed_hosts: Vec<String>,
    /// `webhook.allow_private`: loopback, private, link-local... addresses may be called.
    pub allow_private: bool,
    /// `webhook.ca_file`: extra trusted root certificates (PEM), beside the built-in ones.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `webhook.timeout_s`: one delivery's limit (connect, TLS, answer).
    pub timeout_s: u64,
    /// `webhook.max_backoff_s`: the longest wait between two tries.
    pub max_backoff_s: u64,
    /// `webhook.pause_after_s`: a subscription failing this long is paused.
    pub pause_after_s: u64,
}

/// `[metrics]`: who may read `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `metrics.public_on_loopback`: `/metrics` answers a loopback peer without
    /// authentication.
    pub public_on_loopback: bool,
}

/// `[log]`: how log lines look.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `log.format`
    pub format: LogFormat,
}

/// `log.format`: one line of text per event, or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[server]`: where to listen and how clients reach us.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `server.listen`
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// `server.public_url`, without a trailing `/`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `server.trusted_proxies`: peers whose `X-Forwarded-*` headers are believed.
    #[serde(deserialize_with = "ip_nets")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `server.max_connections`
    pub max_connections: usize,
    /// `server.header_read_timeout_s`
    pub header_read_timeout_s: u64,
    /// `server.max_header_bytes`
    pub max_header_bytes: usize,
    /// `[server.tls]`
    #[serde(default)]
    pub tls: TlsSettings,
}

/// `[server.tls]`: serve HTTPS when `cert` and `key` are set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// `server.tls.cert`: PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// `server.tls.key`: PEM private key.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// `server.tls.client_ca`: PEM CA certificates; when set, clients must present a
    /// certificate signed by one of them.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// `[auth]`: who may poll.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `auth.allow_anonymous`
    pub allow_anonymous: bool,
    /// `auth.basic_file`: htpasswd file with bcrypt entries.
    #[serde(default)]
    pub basic_file: Option<PathBuf>,
    /// `auth.api_key_file`: one key per line.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// `auth.api_key_header`
    pub api_key_header: String,
    /// `auth.folders`: principal (a Basic user, or an API key's name) → the folders it
    /// may use. A principal not listed may use every folder.
    #[serde(default)]
    pub folders: HashMap<String, Vec<String>>,
}

impl AuthSettings {
    /// Whether any authentication method is configured.
    pub fn enabled(&self) -> bool {
        self.basic_file.is_some() || self.api_key_file.is_some()
    }
}

/// `[watch]`: what to watch and when a file counts as complete.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSettings {
    /// `watch.dir`
    pub dir: PathBuf,
    /// `watch.recursive`
    pub recursive: bool,
    /// `watch.settle_ms`
    pub settle_ms: u64,
    /// `watch.settle_after_close_ms`: quiet time after a writer's close (inotify mode).
    pub settle_after_close_ms: u64,
    /// `watch.max_open_hold_s`: longest a file open for writing is held back.
    pub max_open_hold_s: u64,
    /// `watch.include`
    pub include: Vec<String>,
    /// `watch.exclude`
    pub exclude: Vec<String>,
    /// `watch.rescan_interval_s`
    pub rescan_interval_s: u64,
    /// `watch.mode`
    pub mode: WatchMode,
    /// `watch.poll_interval_s`
    pub poll_interval_s: u64,
    /// `watch.poll_confirm`: when a file found by the scans of `poll` mode is complete.
    #[serde(deserialize_with = "poll_confirm")]
    pub poll_confirm: PollConfirm,
    /// `watch.after_delivery`: what happens to a file once every party required has
    /// acknowledged it.
    pub after_delivery: AfterDelivery,
    /// `watch.after_delivery_dir`: where `move` puts them (relative, inside the folder,
    /// never offered).
    pub after_delivery_dir: String,
    /// `watch.after_delivery_requires`: the consumers that must have acknowledged a file.
    pub after_delivery_requires: Vec<String>,
}

/// `watch.after_delivery`: the clean-up after delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterDelivery {
    /// Leave delivered files alone (the default).
    Keep,
    /// Delete them.
    Delete,
    /// Move them into `after_delivery_dir`.
    Move,
}

/// `watch.poll_confirm`: the completeness rule of `poll` mode, where writers on other
/// hosts are invisible to the kernel here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollConfirm {
    /// Unchanged (size, mtime, inode) for `watch.settle_ms` after a scan found it.
    Settle,
    /// Unchanged across two consecutive scans at least `watch.settle_ms` apart.
    TwoScans,
}

/// `watch.mode`: how changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// File-system events (inotify), with periodic rescans as a safety net.
    Inotify,
    /// Periodic scans only, every `watch.poll_interval_s` (NFS and SMB mounts, where
    /// inotify does not see changes made by other hosts).
    Poll,
}

/// `[state]`: where the index lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// `state.dir`
    pub dir: PathBuf,
    /// `state.retention`: index entries older than this are dropped (`None`: kept).
    #[serde(deserialize_with = "retention")]
    pub retention: Option<std::time::Duration>,
}

/// `[trigger]`: the shape of the answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSettings {
    /// `trigger.retry_after_s`
    pub retry_after_s: u32,
    /// `trigger.max_content_bytes`
    pub max_content_bytes: u64,
    /// `trigger.batch_max_bytes`: the byte budget of one batch trigger answer.
    pub batch_max_bytes: u64,
}

/// A socket address with a message that shows the bad value and a good one.
fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a socket address (IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"
        ))
    })
}

/// `"settle"` or `"two_scans"`, with a message that lists both.
fn poll_confirm<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PollConfirm, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "settle" => Ok(PollConfirm::Settle),
        "two_scans" => Ok(PollConfirm::TwoScans),
        _ => Err(serde::de::Error::custom(format!(
            "`{text}` is not a rule: \"settle\" or \"two_scans\""
        ))),
    }
}

/// An optional [`poll_confirm`].
fn opt_poll_confirm<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<PollConfirm>, D::Error> {
    poll_confirm(d).map(Some)
}

/// `"0"` (keep everything) or a number with a unit: `90s`, `30m`, `12h`, `30d`.
fn retention<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let t = text.trim();
    if t == "0" {
        return Ok(None);
    }
    let bad = || {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration: \"0\" to keep everything, or a number with s, m, h or d (e.g. \"30d\")"
        ))
    };
    let (num, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(Some(std::time::Duration::from_secs(n.saturating_mul(secs))))
}

/// IP addresses or CIDR networks (`10.0.0.0/8`, `::1`).
fn ip_nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|text| {
            let t = text.trim();
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{text}` is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
                    ))
                })
        })
        .collect()
}

/// Loads the three layers and validates the result.
///
/// `env` is the process environment (or a test's map); only `FILETRIGGER__*` entries
/// are read.
///
/// # Errors
/// [`ConfigError`] naming the key and the problem: an unreadable file, an unknown key, a
/// value of the wrong type or out of range.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("FILETRIGGER__"))
        .collect();
    let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                problem: if path.exists() {
                    "not a regular file".into()
                } else {
                    "no such file".into()
                },
            });
        }
        builder = builder.add_source(File::from(path).format(FileFormat::Toml));
    }
    builder = builder.add_source(
        Environment::with_prefix("FILETRIGGER")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("watch.include")
            .with_list_parse_key("watch.exclude")
            .with_list_parse_key("watch.after_delivery_requires")
            .with_list_parse_key("server.trusted_proxies")
            .with_list_parse_key("webhook.allowed_hosts")
            .source(Some(env)),
    );
    let config = builder.build().map_err(ConfigError::from_config)?;
    reject_unknown_keys(&config)?;
    let settings: Settings = config.try_deserialize().map_err(ConfigError::from_config)?;
    settings.validate()
}

/// Finds the first key that is not in [`KEYS`], with where it came from.
fn reject_unknown_keys(config: &Config) -> Result<(), ConfigError> {
    let sections: HashMap<String, serde::de::IgnoredAny> = config
        .clone()
        .try_deserialize()
        .map_err(ConfigError::from_config)?;
    let mut sections: Vec<String> = sections.into_keys().collect();
    sections.sort();
    for section in sections {
        if section == "folders" {
            check_folders(config)?;
            continue;
        }
        let table = config
            .get_table(&section)
            .ok()
            .filter(|_| is_table_key(&section));
        let Some(table) = table else {
            return Err(ConfigError::Invalid {
                key: section,
                problem: format!("unknown section; known keys are {}", KEYS.join(", ")),
            });
        };
        check_table(&section, table)?;
    }
    Ok(())
}

/// Whether `path` is a section or sub-table of some known key.
fn is_table_key(path: &str) -> bool {
    KEYS.iter()
        .any(|k| k.len() > path.len() && k.starts_with(path) && k.as_bytes()[path.len()] == b'.')
}

fn check_table(path: &str, table: config::Map<String, Value>) -> Result<(), ConfigError> {
    let mut names: Vec<_> = table.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, v) in names {
        let key = format!("{path}.{name}");
        if KEYS.contains(&key.as_str()) {
            continue;
        }
        match v.clone().into_table() {
            Ok(sub) if is_table_key(&key) => check_table(&key, sub)?,
            _ => return Err(unknown(&key, &v)),
        }
    }
    Ok(())
}

/// `[folders.NAME]`: each NAME valid, each a table of [`FOLDER_KEYS`].
fn check_folders(config: &Config) -> Result<(), ConfigError> {
    let table = config
        .get_table("folders")
        .map_err(|_| ConfigError::Invalid {
            key: "folders".into(),
            problem: "must be a table of [folders.NAME] sections".into(),
        })?;
    let mut names: Vec<_> = table.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, v) in names {
        let key = format!("folders.{name}");
        if !valid_folder_name(&name) {
            return Err(ConfigError::Invalid {
                key,
                problem: format!(
                    "{name:?} is not a folder name: 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit, and not \"default\" (that is [watch])"
                ),
            });
        }
        let Ok(keys) = v.clone().into_table() else {
            return Err(ConfigError::Invalid {
                key,
                problem: "must be a table with at least `dir`".into(),
            });
        };
        let mut keys: Vec<_> = keys.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in keys {
            if !FOLDER_KEYS.contains(&k.as_str()) {
                let origin = v
                    .origin()
                    .map(|o| format!(" (from {o})"))
                    .unwrap_or_default();
                return Err(ConfigError::Invalid {
                    key: format!("{key}.{k}"),
                    problem: format!(
                        "unknown key{origin}; a folder takes {}",
                        FOLDER_KEYS.join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

fn unknown(key: &str, value: &Value) -> ConfigError {
    let origin = value
        .origin()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default();
    ConfigError::Invalid {
        key: key.to_string(),
        problem: format!("unknown key{origin}; known keys are {}", KEYS.join(", ")),
    }
}

impl Settings {
    /// Range and syntax checks that serde's types do not express.
    fn validate(mut self) -> Result<Settings, ConfigError> {
        fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key: key.to_string(),
                problem: problem.into(),
            }
        }
        if let Some(url) = self.server.public_url.take() {
            let trimmed = base_url(&url).map_err(|problem| bad("server.public_url", problem))?;
            self.server.public_url = Some(trimmed);
        }
        if self.watch.dir.as_os_str().is_empty() && self.folders.is_empty() {
            return Err(bad(
                "watch.dir",
                "must not be empty (it may be \"\" only to turn [watch] off beside [folders.NAME] sections)",
            ));
        }
        for (name, f) in &self.folders {
            if f.dir.as_ref().is_none_or(|d| d.as_os_str().is_empty()) {
                return Err(bad(
                    &format!("folders.{name}.dir"),
                    "is required: the directory this folder watches",
                ));
            }
        }
        if self.state.dir.as_os_str().is_empty() {
            return Err(bad("state.dir", "must not be empty"));
        }
        check_watch("watch", &self.watch)?;
        let watched = self.watched();
        for f in &watched {
            if f.section != "watch" {
                check_watch(&f.section, &f.watch)?;
                crate::filter::Filter::new(&f.watch.include, &f.watch.exclude).map_err(
                    |e| match e {
                        ConfigError::Invalid { key, problem } => ConfigError::Invalid {
                            key: key.replacen("watch.", &format!("{}.", f.section), 1),
                            problem,
                        },
                        other => other,
                    },
                )?;
            }
        }
        if !(1..=31_536_000).contains(&self.actions.max_wait_s) {
            return Err(bad(
                "actions.max_wait_s",
                "must be 1 to 31536000 (one year)",
            ));
        }
        if !(1..=3600).contains(&self.webhook.timeout_s) {
            return Err(bad("webhook.timeout_s", "must be 1 to 3600"));
        }
        if !(1..=86_400).contains(&self.webhook.max_backoff_s) {
            return Err(bad("webhook.max_backoff_s", "must be 1 to 86400"));
        }
        if !(1..=31_536_000).contains(&self.webhook.pause_after_s) {
            return Err(bad(
                "webhook.pause_after_s",
                "must be 1 to 31536000 (one year)",
            ));
        }
        for pattern in &self.webhook.allowed_hosts {
            if let Err(e) = globset::Glob::new(&pattern.to_ascii_lowercase()) {
                return Err(bad(
                    "webhook.allowed_hosts",
                    format!("{pattern:?} is not a valid glob: {}", e.kind()),
                ));
            }
        }
        if self
            .webhook
            .ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            self.webhook.ca_file = None;
        }
        let dirs: Vec<(String, PathBuf)> = watched
            .iter()
            .map(|f| (f.dir_key(), absolute(&f.watch.dir)))
            .collect();
        check_overlap(&dirs)?;
        if self.trigger.retry_after_s > 86_400 {
            return Err(bad("trigger.retry_after_s", "must be at most 86400"));
        }
        if self.trigger.batch_max_bytes < 65_536 {
            return Err(bad(
                "trigger.batch_max_bytes",
                "must be at least 65536 (room for the metadata of a full batch)",
            ));
        }
        if self.server.max_connections == 0 {
            return Err(bad("server.max_connections", "must be at least 1"));
        }
        if !(1..=3600).contains(&self.server.header_read_timeout_s) {
            return Err(bad("server.header_read_timeout_s", "must be 1 to 3600"));
        }
        if !(8192..=1_048_576).contains(&self.server.max_header_bytes) {
            return Err(bad("server.max_header_bytes", "must be 8192 to 1048576"));
        }
        match (&self.server.tls.cert, &self.server.tls.key) {
            (Some(_), None) => {
                return Err(bad("server.tls.key", "must be set with server.tls.cert"))
            }
            (None, Some(_)) => {
                return Err(bad("server.tls.cert", "must be set with server.tls.key"))
            }
            (None, None) if self.server.tls.client_ca.is_some() => {
                return Err(bad(
                    "server.tls.client_ca",
                    "needs server.tls.cert and server.tls.key",
                ))
            }
            _ => {}
        }
        let header = &self.auth.api_key_header;
        if header.parse::<hyper::header::HeaderName>().is_err() {
            return Err(bad(
                "auth.api_key_header",
                format!("`{header}` is not a header name"),
            ));
        }
        if !self.auth.enabled()
            && !self.auth.allow_anonymous
            && !self.server.listen.ip().is_loopback()
        {
            return Err(bad(
                "auth",
                format!(
                    "server.listen = {} accepts other hosts but no authentication is set; set auth.basic_file and/or auth.api_key_file, or auth.allow_anonymous = true to serve anyone",
                    self.server.listen
                ),
            ));
        }
        crate::filter::Filter::new(&self.watch.include, &self.watch.exclude)?;
        let names: Vec<String> = watched.into_iter().map(|f| f.name).collect();
        let mut principals: Vec<_> = self.auth.folders.iter().collect();
        principals.sort();
        for (principal, allowed) in principals {
            if let Some(unknown) = allowed.iter().find(|n| !names.contains(n)) {
                return Err(bad(
                    &format!("auth.folders.{principal}"),
                    format!(
                        "{unknown:?} is not a watched folder; the folders are {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(self)
    }

    /// The watched folders: `default` (`[watch]`) first unless `watch.dir = ""`, then each
    /// `[folders.NAME]` by name, with what it does not set taken from `[watch]` and
    /// `trigger.max_content_bytes`.
    pub fn watched(&self) -> Vec<WatchedFolder> {
        let mut out = Vec::with_capacity(self.folders.len() + 1);
        if !self.watch.dir.as_os_str().is_empty() {
            out.push(WatchedFolder {
                name: DEFAULT_FOLDER.to_string(),
                section: "watch".into(),
                watch: self.watch.clone(),
                max_content_bytes: self.trigger.max_content_bytes,
            });
        }
        for (name, f) in &self.folders {
            let w = &self.watch;
            out.push(WatchedFolder {
                name: name.clone(),
                section: format!("folders.{name}"),
                watch: WatchSettings {
                    dir: f.dir.clone().unwrap_or_default(),
                    recursive: f.recursive.unwrap_or(w.recursive),
                    settle_ms: f.settle_ms.unwrap_or(w.settle_ms),
                    settle_after_close_ms: f
                        .settle_after_close_ms
                        .unwrap_or(w.settle_after_close_ms),
                    max_open_hold_s: f.max_open_hold_s.unwrap_or(w.max_open_hold_s),
                    include: f.include.clone().unwrap_or_else(|| w.include.clone()),
                    exclude: f.exclude.clone().unwrap_or_else(|| w.exclude.clone()),
                    rescan_interval_s: f.rescan_interval_s.unwrap_or(w.rescan_interval_s),
                    mode: f.mode.unwrap_or(w.mode),
                    poll_interval_s: f.poll_interval_s.unwrap_or(w.poll_interval_s),
                    poll_confirm: f.poll_confirm.unwrap_or(w.poll_confirm),
                    after_delivery: f.after_delivery.unwrap_or(w.after_delivery),
                    after_delivery_dir: f
                        .after_delivery_dir
                        .clone()
                        .unwrap_or_else(|| w.after_delivery_dir.clone()),
                    after_delivery_requires: f
                        .after_delivery_requires
                        .clone()
                        .unwrap_or_else(|| w.after_delivery_requires.clone()),
                },
                max_content_bytes: f
                    .max_content_bytes
                    .unwrap_or(self.trigger.max_content_bytes),
            });
        }
        out
    }

    /// Creates the watched and state directories if missing and checks they are usable:
    /// `watch.dir` a directory, `state.dir` a writable directory (a full or read-only
    /// disk only warns: opening the index then tells).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `watch.dir` or `state.dir`.
    pub fn prepare_dirs(&self) -> Result<(), ConfigError> {
        for f in self.watched() {
            prepare_dir(&f.dir_key(), &f.watch.dir)?;
        }
        prepare_dir("state.dir", &self.state.dir)?;
        let probe = self
            .state
            .dir
            .join(format!(".filetrigger-write-test-{}", std::process::id()));
        match std::fs::write(&probe, b"ok") {
            Ok(()) => {}
            // A full or read-only disk is not a setting to fix but a state that passes:
            // the index says whether it can work (it may, on a full disk) and systemd
            // retries a start that fails (exit 1, not 2).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull
                        | std::io::ErrorKind::QuotaExceeded
                        | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                tracing::warn!(dir = %self.state.dir.display(), error = %e, "state.dir cannot be written to right now");
            }
            Err(e) => {
                return Err(ConfigError::Invalid {
                    key: "state.dir".into(),
                    problem: format!("{} is not writable: {e}", self.state.dir.display()),
                })
            }
        }
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }
}

/// Range checks of one folder's watch settings; `section` is `watch` or `folders.NAME`.
fn check_watch(section: &str, w: &WatchSettings) -> Result<(), ConfigError> {
    let bad = |key: &str, problem: &str| ConfigError::Invalid {
        key: format!("{section}.{key}"),
        problem: problem.to_string(),
    };
    if w.settle_ms > 86_400_000 {
        return Err(bad("settle_ms", "must be at most 86400000 (one day)"));
    }
    if w.settle_after_close_ms > 86_400_000 {
        return Err(bad(
            "settle_after_close_ms",
            "must be at most 86400000 (one day)",
        ));
    }
    if !(1..=604_800).contains(&w.max_open_hold_s) {
        return Err(bad("max_open_hold_s", "must be 1 to 604800 (one week)"));
    }
    if w.poll_interval_s == 0 {
        return Err(bad("poll_interval_s", "must be at least 1"));
    }
    if w.rescan_interval_s == 0 {
        return Err(bad("rescan_interval_s", "must be at least 1"));
    }
    if w.after_delivery == AfterDelivery::Move
        && crate::confine::components(w.after_delivery_dir.as_bytes()).is_err()
    {
        return Err(bad(
            "after_delivery_dir",
            "must be a relative directory inside the folder (no leading /, no empty, . or .. component)",
        ));
    }
    if let Some(name) = w
        .after_delivery_requires
        .iter()
        .find(|n| !valid_consumer_name(n))
    {
        return Err(bad(
            "after_delivery_requires",
            &format!("{name:?} is not a consumer name (1 to 64 of A-Z, a-z, 0-9, '.', '_', '-')"),
        ));
    }
    Ok(())
}

/// Whether `name` may name a consumer (`consumer=NAME`): 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_consumer_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `dir` made absolute (against the working directory) with `.` and `..` resolved by
/// name, for comparing configured directories before they exist.
fn absolute(dir: &Path) -> PathBuf {
    let joined = std::env::current_dir()
        .map(|cwd| cwd.join(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Refuses two watched folders of which one contains the other (or both are the same
/// directory): a file below both would be indexed, and offered, twice. `dirs` are
/// (key, absolute directory); lib checks the resolved directories again at start-up.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the later folder's key.
pub fn check_overlap(dirs: &[(String, PathBuf)]) -> Result<(), ConfigError> {
    for (i, (key, dir)) in dirs.iter().enumerate() {
        for (other_key, other) in &dirs[..i] {
            let how = if dir == other {
                "is the same directory as"
            } else if dir.starts_with(other) {
                "is inside"
            } else if other.starts_with(dir) {
                "contains"
            } else {
                continue;
            };
            return Err(ConfigError::Invalid {
                key: key.clone(),
                problem: format!(
                    "{} {how} {other_key} ({}): two folders would index the same files twice; give each folder its own directory tree",
                    dir.display(),
                    other.display()
                ),
            });
        }
    }
    Ok(())
}

fn prepare_dir(key: &str, dir: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!("{} exists but is not a directory", dir.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| ConfigError::Invalid {
                key: key.into(),
                problem: format!("cannot create {}: {e}", dir.display()),
            })
        }
        Err(e) => Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!("cannot use {}: {e}", dir.display()),
        }),
    }
}

/// Checks a base URL (`server.public_url`, `filetrigger openapi --url`): `http` or
/// `https`, a host, an optional port and path prefix, no query, fragment or credentials
/// (they would end up in every `Location`). Returns it without a trailing `/`.
///
/// # Errors
/// What is wrong with it, naming the value.
pub fn base_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/').to_string();
    let uri: hyper::Uri = trimmed
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => {}
        Some("http") | Some("https") => return Err(format!("`{url}` has no host")),
        _ => return Err(format!("`{url}` must start with http:// or https://")),
    }
    if uri.authority().is_none() || uri.query().is_some() || trimmed.contains('#') {
        return Err(format!(
            "`{url}` must be scheme://host[:port][/prefix], with no query"
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "`{url}` must not hold credentials (user@ or user:password@): they would be in every Location"
        ));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_without_file_or_environment() {
        let s = load(None, env(&[])).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.server.public_url, None);
        assert_eq!(s.watch.dir, PathBuf::from("./inbox"));
        assert!(s.watch.recursive);
        assert_eq!(s.watch.settle_ms, 2000);
        assert_eq!(s.watch.include, vec!["**"]);
        assert!(s.watch.exclude.contains(&"*.crdownload".to_string()));
        assert_eq!(s.watch.rescan_interval_s, 300);
        assert_eq!(s.watch.settle_after_close_ms, 300);
        assert_eq!(s.watch.max_open_hold_s, 3600);
        assert_eq!(s.watch.poll_confirm, PollConfirm::Settle);
        assert_eq!(s.state.dir, PathBuf::from("./state"));
        assert_eq!(s.trigger.retry_after_s, 15);
        assert_eq!(s.trigger.max_content_bytes, 16 * 1024 * 1024);
        assert_eq!(s.trigger.batch_max_bytes, 6 * 1024 * 1024);
        assert_eq!(s.log.format, LogFormat::Text);
    }

    #[test]
    fn every_key_is_documented_in_default_toml() {
        for key in KEYS {
            let (section, name) = key.rsplit_once('.').unwrap();
            assert!(
                DEFAULT_TOML.contains(&format!("[{section}]")),
                "section {section} missing"
            );
            assert!(
                DEFAULT_TOML.contains(&format!("{name} = ")),
                "{key} is not documented in config/default.toml"
            );
        }
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.toml");
        std::fs::write(&file, "[watch]\nsettle_ms = 500\ndir = \"/from/file\"\n").unwrap();
        let s = load(
            Some(&file),
            env(&[
                ("FILETRIGGER__WATCH__DIR", "/from/env"),
                ("FILETRIGGER__WATCH__EXCLUDE", "*.a,*.b"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.watch.settle_ms, 500);
        assert_eq!(s.watch.dir, PathBuf::from("/from/env"));
        assert_eq!(s.watch.exclude, vec!["*.a", "*.b"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = load(None, env(&[("FILETRIGGER__WATCH__SETTLE", "5")])).unwrap_err();
        assert!(err.to_string().contains("watch.settle"), "{err}");
        let err = load(None, env(&[("FILETRIGGER__NOPE__X", "5")])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn after_delivery_is_off_by_default_and_its_dir_must_stay_inside() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let s = load(None, env(&[])).unwrap();
        assert_eq!(s.watch.after_delivery, AfterDelivery::Keep);
        assert!(s.watch.after_delivery_requires.is_empty());
        for dir in ["../out", "/srv/out", "a//b", ""] {
            let err = load(
                None,
                env(&[
                    ("FILETRIGGER__WATCH__AFTER_DELIVERY", "move"),
                    ("FILETRIGGER__WATCH__AFTER_DELIVERY_DIR", dir),
                ]),
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("watch.after_delivery_dir"),
                "{dir}: {err}"
            );
        }
        let s = load(
            None,
            env(&[
                ("FILETRIGGER__WATCH__AFTER_DELIVERY", "delete"),
                ("FILETRIGGER__WATCH__AFTER_DELIVERY_REQUIRES", "a,b"),
                ("FILETRIGGER__FOLDERS__X__DIR", "/tmp/ft-x-after"),
            ]),
        )
        .unwrap();
        let x = s.watched().into_iter().find(|f| f.name == "x").unwrap();
        assert_eq!(x.watch.after_delivery, AfterDelivery::Delete, "inherited");
        assert_eq!(x.watch.after_delivery_requires, ["a", "b"]);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (k, v, key) in [
            ("FILETRIGGER__WATCH__SETTLE_MS", "abc", "watch.settle_ms"),
            ("FILETRIGGER__SERVER__LISTEN", "localhost", "server.listen"),
            (
                "FILETRIGGER__SERVER__PUBLIC_URL",
                "ftp://x",
                "server.public_url",
            ),
            (
                "FILETRIGGER__WATCH__RESCAN_INTERVAL_S",
                "0",
                "watch.rescan_interval_s",
            ),
            ("FILETRIGGER__WATCH__MODE", "fanotify", "watch.mode"),
            (
                "FILETRIGGER__STATE__RETENTION",
                "30 days",
                "state.retention",
            ),
            ("FILETRIGGER__STATE__RETENTION", "30", "state.retention"),
            (
                "FILETRIGGER__WATCH__POLL_INTERVAL_S",
                "0",
                "watch.poll_interval_s",
            ),
            ("FILETRIGGER__WATCH__EXCLUDE", "a[", "watch.exclude"),
            (
                "FILETRIGGER__WATCH__SETTLE_AFTER_CLOSE_MS",
                "-1",
                "watch.settle_after_close_ms",
            ),
            (
                "FILETRIGGER__WATCH__MAX_OPEN_HOLD_S",
                "0",
                "watch.max_open_hold_s",
            ),
            (
                "FILETRIGGER__WATCH__POLL_CONFIRM",
                "twice",
                "watch.poll_confirm",
            ),
            ("FILETRIGGER__LOG__FORMAT", "xml", "log.format"),
            (
                "FILETRIGGER__WATCH__AFTER_DELIVERY",
                "shred",
                "watch.after_delivery",
            ),
            (
                "FILETRIGGER__WATCH__AFTER_DELIVERY_REQUIRES",
                "ok,not ok",
                "watch.after_delivery_requires",
            ),
        ] {
            let err = load(None, env(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(key), "{k}={v}: {err}");
        }
    }

    #[test]
    fn the_writer_keys_load_from_the_environment() {
        let s = load(
            None,
            env(&[
                ("FILETRIGGER__WATCH__SETTLE_AFTER_CLOSE_MS", "0"),
                ("FILETRIGGER__WATCH__MAX_OPEN_HOLD_S", "604800"),
                ("FILETRIGGER__WATCH__POLL_CONFIRM", "two_scans"),
            ]),
        )
        .unwrap();
        assert_eq!(s.watch.settle_after_close_ms, 0);
        assert_eq!(s.watch.max_open_hold_s, 604_800);
        assert_eq!(s.watch.poll_confirm, PollConfirm::TwoScans);
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let s = load(
            None,
            env(&[("FILETRIGGER__SERVER__PUBLIC_URL", "https://gw.example/ft/")]),
        )
        .unwrap();
        assert_eq!(
            s.server.public_url.as_deref(),
            Some("https://gw.example/ft")
        );
    }
}

#[cfg(test)]
mod folder_tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_named_folder_inherits_what_it_does_not_set() {
        let (_d, f) = file(
            "[watch]\ndir = \"/srv/a\"\nsettle_ms = 700\n[trigger]\nmax_content_bytes = 99\n\
             [folders.docs]\ndir = \"/srv/docs\"\nrecursive = false\nmax_content_bytes = 5\n\
             [folders.scans]\ndir = \"/srv/scans\"\nmode = \"poll\"\npoll_confirm = \"two_scans\"\n",
        );
        let s = load(Some(&f), env(&[])).unwrap();
        let w = s.watched();
        let names: Vec<&str> = w.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["default", "docs", "scans"]);
        assert_eq!(w[1].watch.dir, PathBuf::from("/srv/docs"));
        assert!(!w[1].watch.recursive);
        assert_eq!(w[1].watch.settle_ms, 700);
        assert_eq!(w[1].max_content_bytes, 5);
        assert_eq!(w[2].max_content_bytes, 99);
        assert_eq!(w[2].watch.mode, WatchMode::Poll);
        assert_eq!(w[2].watch.poll_confirm, PollConfirm::TwoScans);
        assert_eq!(w[1].dir_key(), "folders.docs.dir");
    }

    #[test]
    fn the_environment_can_add_a_folder_and_turn_watch_off() {
        let s = load(
            None,
            env(&[
                ("FILETRIGGER__FOLDERS__TEAM_A__DIR", "/srv/team-a"),
                ("FILETRIGGER__FOLDERS__TEAM_A__SETTLE_MS", "50"),
                ("FILETRIGGER__WATCH__DIR", ""),
            ]),
        )
        .unwrap();
        let w = s.watched();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].name, "team_a");
        assert_eq!(w[0].watch.dir, PathBuf::from("/srv/team-a"));
        assert_eq!(w[0].watch.settle_ms, 50);
    }

    #[test]
    fn folder_errors_name_their_key() {
        for (text, key) in [
            ("[folders.Docs]\ndir = \"/x\"\n", "folders.Docs"),
            ("[folders.default]\ndir = \"/x\"\n", "folders.default"),
            ("[folders.-a]\ndir = \"/x\"\n", "folders.-a"),
            ("[folders.a]\nrecursive = true\n", "folders.a.dir"),
            (
                "[folders.a]\ndir = \"/x\"\nsettle = 1\n",
                "folders.a.settle",
            ),
            (
                "[folders.a]\ndir = \"/x\"\nsettle_ms = \"x\"\n",
                "folders.a.settle_ms",
            ),
            (
                "[folders.a]\ndir = \"/x\"\npoll_interval_s = 0\n",
                "folders.a.poll_interval_s",
            ),
            (
                "[folders.a]\ndir = \"/x\"\nexclude = [\"a[\"]\n",
                "folders.a.exclude",
            ),
            (
                "[watch]\ndir = \"/x\"\n[folders.a]\ndir = \"/x/y\"\n",
                "folders.a.dir",
            ),
            (
                "[watch]\ndir = \"/x/y/../\"\n[folders.a]\ndir = \"/x/\"\n",
                "folders.a.dir",
            ),
            (
                "[watch]\ndir = \"/x\"\n[folders.a]\ndir = \"/q\"\n[folders.b]\ndir = \"/q/../\"\n",
                "folders.b.dir",
            ),
            ("[watch]\ndir = \"\"\n", "watch.dir"),
            (
                "[folders.a]\ndir = \"/q\"\n[auth.folders]\nbob = [\"b\"]\n",
                "auth.folders.bob",
            ),
        ] {
            let (_d, f) = file(text);
            let err = load(Some(&f), env(&[])).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn auth_folders_lists_folders_per_principal() {
        let (_d, f) = file(
            "[folders.a]\ndir = \"/qa\"\n[folders.b]\ndir = \"/qb\"\n[auth.folders]\nbob = [\"a\"]\nci = [\"default\", \"b\"]\n",
        );
        let s = load(Some(&f), env(&[])).unwrap();
        assert_eq!(s.auth.folders["bob"], vec!["a"]);
        assert_eq!(s.auth.folders["ci"], vec!["default", "b"]);
    }
}
