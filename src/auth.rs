//! Authentication: HTTP Basic against an htpasswd file (bcrypt) and API keys in a header.
//!
//! Owns: loading the secret files (never logging a secret), checking a request's
//! credentials in constant time and saying who they belong to ([`Principal`]: a Basic
//! user, or the name of a `name:key` API key line), and remembering recent successful Basic checks so that a
//! drain of many polls does not pay bcrypt's cost each time.
//! Does not own: which routes need it or the `401` answer (`routes`), which folders a
//! principal may use (`auth.folders`, applied by `routes`), or reloading on SIGHUP
//! (`lib` swaps in a newly loaded [`Auth`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hyper::header::{HeaderMap, HeaderName, AUTHORIZATION};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::AuthSettings;
use crate::error::ConfigError;

/// Remembered successful Basic checks at most (then the memory starts afresh).
const CACHE_MAX: usize = 1024;

/// A bcrypt hash to check unknown users against, so that a wrong user name costs the same
/// time as a wrong password.
const DUMMY_HASH: &str = "$2y$05$abcdefghijklmnopqrstuu5xBmQm/8XhJuR8/2Ee2.GGyF5f4D/.u";

/// The configured methods, loaded.
pub struct Auth {
    users: HashMap<String, String>,
    /// Each key with its name (`None` for a bare key line).
    keys: Keys,
    header: HeaderName,
    /// SHA-256 over "user:password" of recent successes, with the stored hash they matched.
    verified: Mutex<HashMap<[u8; 32], String>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.len())
            .field("keys", &self.keys.len())
            .field("header", &self.header)
            .finish()
    }
}

/// Who a request authenticated as: a Basic user's name, or an API key's name (a
/// `name:key` line); `None` for a bare (unnamed) key or when no authentication is
/// configured. `auth.folders` limits a named principal; an unnamed one may use every folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal(pub Option<String>);

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated, as this principal.
    Allowed(Principal),
    /// No credentials were sent.
    Missing,
    /// Credentials were sent and are wrong.
    Denied,
}

impl Auth {
    /// Loads the files named in `[auth]`; `None` when no method is configured.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key: unreadable file, no entries, or an entry
    /// that is not bcrypt (the message names the line, never the secret).
    pub fn load(settings: &AuthSettings) -> Result<Option<Auth>, ConfigError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let users = match &settings.basic_file {
            Some(path) => load_htpasswd(path)?,
            None => HashMap::new(),
        };
        let keys = match &settings.api_key_file {
            Some(path) => load_keys(path)?,
            None => Vec::new(),
        };
        let header =
            settings
                .api_key_header
                .parse::<HeaderName>()
                .map_err(|_| ConfigError::Invalid {
                    key: "auth.api_key_header".into(),
                    problem: "not a header name".into(),
                })?;
        Ok(Some(Auth {
            users,
            keys,
            header,
            verified: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether Basic authentication is configured (for `WWW-Authenticate`).
    pub fn has_basic(&self) -> bool {
        !self.users.is_empty()
    }

    /// The API key header's name.
    pub fn key_header(&self) -> &HeaderName {
        &self.header
    }

    /// Checks a request's headers (blocking: bcrypt takes milliseconds).
    pub fn check(&self, headers: &HeaderMap) -> Verdict {
        let mut sent = false;
        if !self.keys.is_empty() {
            if let Some(given) = headers.get(&self.header) {
                sent = true;
                let given = given.as_bytes();
                // Compare against every key, so the time does not tell which one matched.
                let mut ok = subtle::Choice::from(0u8);
                let mut which = 0u32;
                for (i, (_, k)) in self.keys.iter().enumerate() {
                    let eq = k.as_slice().ct_eq(given);
                    ok |= eq;
                    which.conditional_assign(&u32::try_from(i).unwrap_or(u32::MAX), eq);
                }
                if bool::from(ok) {
                    let name = self.keys.get(which as usize).and_then(|(n, _)| n.clone());
                    return Verdict::Allowed(Principal(name));
                }
            }
        }
        if !self.users.is_empty() {
            if let Some((user, password)) = basic_credentials(headers) {
                sent = true;
                if self.check_basic(&user, &password) {
                    return Verdict::Allowed(Principal(Some(user)));
                }
            }
        }
        if sent {
            Verdict::Denied
        } else {
            Verdict::Missing
        }
    }

    fn check_basic(&self, user: &str, password: &str) -> bool {
        let hash = self.users.get(user);
        let digest = digest(user, password);
        if let Some(hash) = hash {
            let cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.get(&digest).is_some_and(|h| h == hash) {
                return true;
            }
        }
        let ok = bcrypt::verify(password, hash.map_or(DUMMY_HASH, String::as_str)).unwrap_or(false);
        if ok && hash.is_some() {
            let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(digest, hash.cloned().unwrap_or_default());
        }
        ok && hash.is_some()
    }
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(user.as_bytes());
    ctx.update(b":");
    ctx.update(password.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `Authorization: Basic base64(user:password)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        key: key.into(),
        problem: format!("cannot read {}: {e}", path.display()),
    })
}

fn load_htpasswd(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let key = "auth.basic_file";
    let text = read_secret_file(key, path)?;
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| ConfigError::Invalid {
            key: key.into(),
            problem: format!("{} line {}: {why}", path.display(), n + 1),
        };
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected user:hash"))?;
        if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
            return Err(bad("not a bcrypt entry; create it with `htpasswd -B`"));
        }
        users.insert(user.to_string(), hash.to_string());
    }
    if users.is_empty() {
        return Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!("{} has no entries", path.display()),
        });
    }
    Ok(users)
}

/// Whether `name` may name an API key (`name:key` lines): 1 to 64 of `A-Za-z0-9_.@-`.
fn key_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@' | b'-'))
}

/// One line of the key file: `name:key` when the part before the first `:` is a name and
/// the rest is a key of 16 characters or more, else a bare key.
fn key_line(line: &str) -> (Option<String>, Vec<u8>) {
    match line.split_once(':') {
        Some((name, key)) if key_name(name) && key.len() >= 16 => {
            (Some(name.to_string()), key.as_bytes().to_vec())
        }
        _ => (None, line.as_bytes().to_vec()),
    }
}

/// API keys, each with its name (`None`: a bare key line).
type Keys = Vec<(Option<String>, Vec<u8>)>;

fn load_keys(path: &Path) -> Result<Keys, ConfigError> {
    let key = "auth.api_key_file";
    let text = read_secret_file(key, path)?;
    let keys: Keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(key_line)
        .collect();
    if keys.is_empty() {
        return Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!("{} has no keys", path.display()),
        });
    }
    if let Some(n) = keys.iter().position(|(_, k)| k.len() < 16) {
        return Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!(
                "{}: key {} is shorter than 16 characters",
                path.display(),
                n + 1
            ),
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn settings(dir: &Path, basic: bool, keys: bool) -> AuthSettings {
        let hash = bcrypt::hash_with_result("s3cret", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        std::fs::write(dir.join("htpasswd"), format!("# users\nalice:{hash}\n")).unwrap();
        std::fs::write(dir.join("keys"), "# keys\n0123456789abcdef0123\n\n").unwrap();
        AuthSettings {
            allow_anonymous: false,
            basic_file: basic.then(|| dir.join("htpasswd")),
            api_key_file: keys.then(|| dir.join("keys")),
            api_key_header: "X-API-Key".into(),
            folders: HashMap::new(),
        }
    }

    fn basic(user: &str, pw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", B64.encode(format!("{user}:{pw}")));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn basic_and_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::load(&settings(dir.path(), true, true))
            .unwrap()
            .unwrap();
        assert_eq!(auth.check(&HeaderMap::new()), Verdict::Missing);
        let alice = Verdict::Allowed(Principal(Some("alice".into())));
        assert_eq!(auth.check(&basic("alice", "s3cret")), alice);
        // A second time comes from the cache and still needs the right password.
        assert_eq!(auth.check(&basic("alice", "s3cret")), alice);
        assert_eq!(auth.check(&basic("alice", "wrong")), Verdict::Denied);
        assert_eq!(auth.check(&basic("mallory", "s3cret")), Verdict::Denied);
        let mut h = HeaderMap::new();
        h.insert(
            "x-api-key",
            HeaderValue::from_static("0123456789abcdef0123"),
        );
        assert_eq!(auth.check(&h), Verdict::Allowed(Principal(None)));
        h.insert("x-api-key", HeaderValue::from_static("0123456789abcdef012"));
        assert_eq!(auth.check(&h), Verdict::Denied);
    }

    #[test]
    fn a_named_key_line_names_its_principal() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), false, true);
        std::fs::write(
            dir.path().join("keys"),
            "team-a:aaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbb\n:cccccccccccccccccccc\n",
        )
        .unwrap();
        s.api_key_file = Some(dir.path().join("keys"));
        let auth = Auth::load(&s).unwrap().unwrap();
        let with = |k: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("x-api-key", HeaderValue::from_static(k));
            auth.check(&h)
        };
        assert_eq!(
            with("aaaaaaaaaaaaaaaaaaaa"),
            Verdict::Allowed(Principal(Some("team-a".into())))
        );
        assert_eq!(with("team-a:aaaaaaaaaaaaaaaaaaaa"), Verdict::Denied);
        assert_eq!(
            with("bbbbbbbbbbbbbbbbbbbb"),
            Verdict::Allowed(Principal(None))
        );
        // Not a name:key pair: the whole line is the key.
        assert_eq!(
            with(":cccccccccccccccccccc"),
            Verdict::Allowed(Principal(None))
        );
    }

    #[test]
    fn no_method_means_no_auth() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Auth::load(&settings(dir.path(), false, false))
            .unwrap()
            .is_none());
    }

    #[test]
    fn non_bcrypt_entries_are_refused_without_showing_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, "bob:$apr1$xyz$SECRETHASH\n").unwrap();
        let s = AuthSettings {
            allow_anonymous: false,
            basic_file: Some(path),
            api_key_file: None,
            api_key_header: "X-API-Key".into(),
            folders: HashMap::new(),
        };
        let err = Auth::load(&s).unwrap_err().to_string();
        assert!(
            err.contains("auth.basic_file") && err.contains("line 1"),
            "{err}"
        );
        assert!(!err.contains("SECRETHASH"), "{err}");
    }

    #[test]
    fn the_dummy_hash_is_a_valid_bcrypt_hash() {
        assert!(!bcrypt::verify("x", DUMMY_HASH).unwrap());
    }
}
