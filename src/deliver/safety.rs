//! Outbound safety: which callback URLs the daemon may call.
//!
//! Owns: the checks of a callback URL ([`Policy::parse`]: `https` unless
//! `webhook.allow_http`, the host against `webhook.allowed_hosts`, no user info; and,
//! after name resolution, every address against `webhook.allow_private`), and the resolver
//! the client connects through ([`CheckedResolver`]), which hands the connector only
//! addresses it checked, so a name that resolves differently later (DNS rebinding) cannot
//! reach a refused address. A refusal's text never holds the URL's query (where Logic
//! Apps puts the `sig` secret).
//! Does not own: sending (`deliver`), or when a URL is checked (`hooks`, `routes`).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use hyper::Uri;
use hyper_util::client::legacy::connect::dns::Name;

use crate::config::WebhookSettings;

/// How long a subscribe waits for the callback host's name to resolve.
const RESOLVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A callback URL that passed [`Policy::parse`]. Its `Display` and `Debug` show the host
/// and path only: the query holds a secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Callback {
    uri: Uri,
}

impl Callback {
    /// The whole URL (secret: never log or return it).
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The whole URL's text, for the index (secret).
    pub(crate) fn secret_text(&self) -> String {
        self.uri.to_string()
    }

    /// The host, lowercase.
    pub(crate) fn host(&self) -> String {
        self.uri.host().unwrap_or("").to_ascii_lowercase()
    }

    /// `host/path`, what logs show.
    pub(crate) fn redacted(&self) -> String {
        format!("{}{}", self.host(), self.uri.path())
    }

    fn port(&self) -> u16 {
        self.uri.port_u16().unwrap_or(match self.uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        })
    }
}

impl std::fmt::Display for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callback({})", self.redacted())
    }
}

/// `[webhook]`'s rules for callback URLs.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    allow_http: bool,
    allow_private: bool,
    hosts: Arc<GlobSet>,
    patterns: Vec<String>,
}

impl Policy {
    /// The rules of `settings` (its globs were checked when the settings were loaded; a
    /// bad one here matches nothing).
    pub(crate) fn new(settings: &WebhookSettings) -> Policy {
        let mut set = GlobSetBuilder::new();
        for p in &settings.allowed_hosts {
            if let Ok(g) = GlobBuilder::new(&p.to_ascii_lowercase())
                .case_insensitive(true)
                .build()
            {
                set.add(g);
            }
        }
        Policy {
            allow_http: settings.allow_http,
            allow_private: settings.allow_private,
            hosts: Arc::new(set.build().unwrap_or_else(|_| GlobSet::empty())),
            patterns: settings.allowed_hosts.clone(),
        }
    }

    /// Checks the form of `text` (no resolution): scheme, host, allow-list; an IP literal
    /// is checked against the address ranges here too.
    ///
    /// # Errors
    /// Why it is refused, without the query.
    pub(crate) fn parse(&self, text: &str) -> Result<Callback, String> {
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|_| "callbackUrl is not a valid absolute URL".to_string())?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_http => {}
            Some("http") => {
                return Err(
                    "callbackUrl must use https (plain http is refused unless webhook.allow_http = true)"
                        .into(),
                )
            }
            _ => return Err("callbackUrl must be an https:// URL".into()),
        }
        let Some(authority) = uri.authority() else {
            return Err("callbackUrl has no host".into());
        };
        if authority.as_str().contains('@') {
            return Err("callbackUrl must not carry user information (user@host)".into());
        }
        let host = authority
            .host()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err("callbackUrl has no host".into());
        }
        if !self.hosts.is_match(&host) {
            return Err(format!(
                "the callback host {host} is not in webhook.allowed_hosts ({})",
                if self.patterns.is_empty() {
                    "empty: no callback is allowed".to_string()
                } else {
                    self.patterns.join(", ")
                }
            ));
        }
        let callback = Callback { uri };
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(ip)?;
        }
        Ok(callback)
    }

    /// Resolves the callback's host and checks every address.
    ///
    /// # Errors
    /// Why it is refused: no address, or an address in a refused range.
    pub(crate) async fn resolve(&self, callback: &Callback) -> Result<Vec<SocketAddr>, String> {
        let host = callback.host();
        let port = callback.port();
        // An IPv6 literal's host comes in brackets (`[2001:db8::1]`).
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.check_ip(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        let addrs: Vec<SocketAddr> = tokio::time::timeout(RESOLVE_LIMIT, lookup)
            .await
            .map_err(|_| {
                format!(
                    "the callback host {host} did not resolve within {} s",
                    RESOLVE_LIMIT.as_secs()
                )
            })?
            .map_err(|e| format!("the callback host {host} cannot be resolved: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("the callback host {host} has no address"));
        }
        for a in &addrs {
            self.check_ip(a.ip())
                .map_err(|why| format!("{host} resolves to {why}"))?;
        }
        Ok(addrs)
    }

    /// Refuses an address in a non-public range unless `allow_private`.
    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        match refused_range(ip) {
            Some(range) => Err(format!(
                "{ip}, a {range} address, which is refused unless webhook.allow_private = true"
            )),
            None => Ok(()),
        }
    }

    /// Checks the host when it is an address literal (which the connector does not pass
    /// to the resolver); a name passes here and is checked by [`CheckedResolver`].
    ///
    /// # Errors
    /// Why the address is refused.
    pub(crate) fn check_literal(&self, callback: &Callback) -> Result<(), String> {
        match callback.host().trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => self.check_ip(ip),
            Err(_) => Ok(()),
        }
    }

    /// The resolver for the client: only checked addresses.
    pub(crate) fn resolver(&self) -> CheckedResolver {
        CheckedResolver {
            policy: self.clone(),
        }
    }
}

/// The kind of a non-public address (`None`: public).
pub(crate) fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("multicast or reserved")
            } else if o[0] == 100 && (64..128).contains(&o[1]) {
                Some("shared (CGNAT)")
            } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
                Some("IETF protocol")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique-local")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if s[0] == 0x64 && s[1] == 0xff9b {
                // NAT64 can reach any IPv4 address, private ones too.
                Some("NAT64")
            } else if (s[0] & 0xffc0) == 0xfec0 {
                Some("site-local")
            } else if s[0] == 0x2002 || (s[0] == 0x2001 && s[1] == 0) {
                // 6to4 and Teredo carry an IPv4 address inside, private ones too.
                Some("IPv4 tunnel (6to4 or Teredo)")
            } else if s[..6] == [0; 6] {
                // IPv4-compatible (`::a.b.c.d`, deprecated): an IPv4 address in disguise.
                Some("IPv4-compatible")
            } else {
                None
            }
        }
    }
}

/// A resolver for hyper-util's connector that returns only the addresses the policy
/// allows (an error when none is left).
#[derive(Debug, Clone)]
pub(crate) struct CheckedResolver {
    policy: Policy,
}

type ResolveFuture =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = ResolveFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| policy.check_ip(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} has no address webhook.allow_private permits"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p_settings(allow_private: bool) -> WebhookSettings {
        WebhookSettings {
            allow_http: false,
            allowed_hosts: vec![],
            allow_private,
            ca_file: None,
            timeout_s: 1,
            max_backoff_s: 1,
            pause_after_s: 1,
        }
    }

    fn policy(allow_private: bool) -> Policy {
        Policy::new(&WebhookSettings {
            allow_http: false,
            allowed_hosts: vec![
                "*.logic.azure.com".into(),
                "10.*".into(),
                "169.254.169.254".into(),
                "localhost".into(),
            ],
            allow_private,
            ca_file: None,
            timeout_s: 1,
            max_backoff_s: 1,
            pause_after_s: 1,
        })
    }

    #[test]
    fn refusals_name_the_reason_and_never_the_query() {
        let p = policy(false);
        let ok = p
            .parse("https://prod-03.westus.logic.azure.com:443/workflows/x/run?sig=SECRET")
            .unwrap();
        assert_eq!(
            ok.redacted(),
            "prod-03.westus.logic.azure.com/workflows/x/run"
        );
        assert!(!format!("{ok} {ok:?}").contains("SECRET"));
        for (url, want) in [
            (
                "http://prod-03.westus.logic.azure.com/x?sig=SECRET",
                "https",
            ),
            ("https://evil.example.com/x?sig=SECRET", "allowed_hosts"),
            ("https://10.1.2.3/x?sig=SECRET", "private"),
            ("https://169.254.169.254/x?sig=SECRET", "link-local"),
            ("https://u:p@a.logic.azure.com/x?sig=SECRET", "user"),
            ("ftp://a.logic.azure.com/x?sig=SECRET", "https"),
        ] {
            let e = p.parse(url).unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
        assert!(policy(true).parse("https://10.1.2.3/x").is_ok());
    }

    #[test]
    fn ranges() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(refused_range(a.parse().unwrap()).is_some(), "{a}");
        }
        for a in ["20.42.1.1", "2603:1030::1", "100.128.0.1"] {
            assert!(refused_range(a.parse().unwrap()).is_none(), "{a}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
        let p = policy(false);
        let cb = p.parse("https://localhost/x").unwrap();
        let e = p.resolve(&cb).await.unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(policy(true).resolve(&cb).await.is_ok());
    }

    #[tokio::test]
    async fn an_ipv6_literal_is_checked_as_an_address_not_looked_up_as_a_name() {
        let any = Policy::new(&WebhookSettings {
            allowed_hosts: vec!["*".into()],
            ..p_settings(false)
        });
        let public = any.parse("https://[2603:1030::1]:8443/x").unwrap();
        assert_eq!(
            any.resolve(&public).await.unwrap(),
            vec!["[2603:1030::1]:8443".parse::<SocketAddr>().unwrap()]
        );
        let open = Policy::new(&WebhookSettings {
            allowed_hosts: vec!["*".into()],
            ..p_settings(true)
        });
        let lo = open.parse("https://[::1]/x").unwrap();
        assert!(any.resolve(&lo).await.unwrap_err().contains("loopback"));
        assert!(open.resolve(&lo).await.is_ok());
    }

    #[test]
    fn ipv6_forms_that_carry_an_ipv4_address_or_a_local_scope_are_refused() {
        for (ip, kind) in [
            ("::127.0.0.1", "IPv4-compatible"),
            ("::10.0.0.1", "IPv4-compatible"),
            ("2002:7f00:1::", "IPv4 tunnel (6to4 or Teredo)"),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "IPv4 tunnel (6to4 or Teredo)",
            ),
            ("fec0::1", "site-local"),
            ("::ffff:169.254.169.254", "link-local"),
        ] {
            assert_eq!(refused_range(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["2603:1030::1", "2001:db8:1::1", "8.8.8.8"] {
            assert_eq!(refused_range(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
