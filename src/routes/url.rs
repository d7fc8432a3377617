//! The URL the client sees, and the `Location` URLs built on it.
//!
//! Owns: the URL policy (`server.public_url`; else `X-Forwarded-Proto/Host/Prefix`, but
//! only from a peer in `server.trusted_proxies`; else `Host`), and turning a URL into a
//! `Location` value: absolute, non-ASCII bytes percent-encoded, at most [`MAX_LOCATION`]
//! bytes; the same for links in bodies (`contentLink`, `nextLink`).
//! Does not own: which query parameters a route keeps or sets (the route, e.g. `trigger`).

use std::borrow::Cow;
use std::net::SocketAddr;

use hyper::header::{HeaderValue, HOST};
use hyper::Request;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};

use super::RequestError;
use crate::config::Settings;

/// `Location` must stay under this many bytes (Logic Apps' limit is about 2 KB).
pub(super) const MAX_LOCATION: usize = 2048;

/// Where the client's view of our URL comes from (`[server]`).
#[derive(Debug)]
pub(super) struct UrlPolicy {
    /// `server.public_url`
    public_url: Option<String>,
    /// `server.trusted_proxies`
    trusted_proxies: Vec<ipnet::IpNet>,
}

impl UrlPolicy {
    pub(super) fn new(settings: &Settings) -> UrlPolicy {
        UrlPolicy {
            public_url: settings.server.public_url.clone(),
            trusted_proxies: settings.server.trusted_proxies.clone(),
        }
    }

    /// The absolute base URL the client sees (scheme, host, port, optional prefix):
    /// `server.public_url`; else `X-Forwarded-*` from a trusted proxy; else `Host`.
    pub(super) fn base_url<B>(
        &self,
        peer: SocketAddr,
        secure: bool,
        req: &Request<B>,
    ) -> Result<String, RequestError> {
        if let Some(url) = &self.public_url {
            return Ok(url.clone());
        }
        let peer_ip = peer.ip().to_canonical();
        let trusted = self.trusted_proxies.iter().any(|n| n.contains(&peer_ip));
        let mut scheme = if secure { "https" } else { "http" };
        let mut host = match req.headers().get(HOST) {
            Some(h) => h.to_str().ok().map(str::to_string),
            None => req.uri().authority().map(|a| a.to_string()),
        };
        let mut prefix = String::new();
        if trusted {
            match forwarded(req, "x-forwarded-proto")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("https") => scheme = "https",
                Some("http") => scheme = "http",
                _ => {}
            }
            if let Some(h) = forwarded(req, "x-forwarded-host") {
                host = Some(h.to_string());
            }
            if let Some(p) = forwarded(req, "x-forwarded-prefix") {
                let safe = p.starts_with('/')
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
                    && escapes_well_formed(p);
                if safe {
                    prefix = p.trim_end_matches('/').to_string();
                }
            }
        }
        host.filter(|h| {
            !h.is_empty() && !h.contains('@') && h.parse::<hyper::http::uri::Authority>().is_ok()
        })
        .map(|h| format!("{scheme}://{h}{prefix}"))
        .ok_or(RequestError::BadHost)
    }
}

/// The first value of a forwarded header, trimmed.
fn forwarded<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    let v = req.headers().get(name)?.to_str().ok()?;
    let first = v.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// Whether every `%` in `s` starts an escape of two hex digits.
fn escapes_well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// `Location` for the request's own URL under `base`, its query exactly as sent.
pub(super) fn same<B>(base: &str, req: &Request<B>) -> Result<HeaderValue, RequestError> {
    let uri = req.uri();
    header_url(format!(
        "{base}{}?{}",
        uri.path(),
        uri.query().unwrap_or("")
    ))
}

/// `Location` for the request's path under `base` with the query `kept` (raw pairs, in
/// order) followed by `key=value`.
pub(super) fn with_param<B>(
    base: &str,
    req: &Request<B>,
    kept: &[&str],
    key: &str,
    value: &str,
) -> Result<HeaderValue, RequestError> {
    let mut url = format!("{base}{}?", req.uri().path());
    for p in kept {
        url.push_str(p);
        url.push('&');
    }
    url.push_str(key);
    url.push('=');
    url.push_str(value);
    header_url(url)
}

/// What a query value keeps unescaped in a link: unreserved characters, `/` and `:`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// An absolute link `base` + `path` (already URL-safe) + `?` + the `params` (each value
/// percent-encoded), for a body (`contentLink`, `nextLink`); `None` when it would be
/// [`MAX_LOCATION`] bytes or longer.
pub(super) fn link(base: &str, path: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = format!("{base}{path}");
    for (i, (k, v)) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        url.extend(utf8_percent_encode(v, QUERY_VALUE));
    }
    (url.len() < MAX_LOCATION).then_some(url)
}

/// A URL as a `Location` value, within the length limit. Bytes outside ASCII (hyper lets
/// UTF-8 through in a query) are percent-encoded, as an IRI maps to a URI: a raw one
/// would make `Location` an invalid URI that clients decode as Latin-1.
fn header_url(url: String) -> Result<HeaderValue, RequestError> {
    let url: Cow<'_, str> = utf8_percent_encode(&url, CONTROLS).into();
    if url.len() > MAX_LOCATION {
        return Err(RequestError::LocationTooLong);
    }
    HeaderValue::from_str(&url).map_err(|_| RequestError::BadQuery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_prefix_needs_well_formed_escapes() {
        assert!(escapes_well_formed("/api/%C3%BC/x"));
        assert!(escapes_well_formed("/plain"));
        for bad in ["/%zz", "/a%", "/a%4", "/%4g/"] {
            assert!(!escapes_well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn location_percent_encodes_a_raw_utf8_query() {
        // Found by fuzzing (tests/fuzz, target `request`): hyper passes `?folder=ü` as raw
        // UTF-8, and `Location` echoed it raw, which is not a valid URI.
        let loc = header_url("http://h:1/trigger?f%C3%BC=\u{fc}&triggerState=x".into()).unwrap();
        assert_eq!(
            loc.to_str().unwrap(),
            "http://h:1/trigger?f%C3%BC=%C3%BC&triggerState=x"
        );
    }
}
