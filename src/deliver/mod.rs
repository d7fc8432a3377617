//! Outbound webhook calls: one POST of a JSON body to a callback URL, and what came of it.
//!
//! Owns: the HTTP client (hyper-util's pooled client over rustls via hyper-rustls, HTTP/1.1,
//! the web PKI roots plus `webhook.ca_file`), the limit of one call (`webhook.timeout_s`:
//! connecting, TLS, sending and the answer), the `X-Filetrigger-Stamp` header, and sorting
//! an answer into delivered / retry (with `Retry-After`) / refused. Every call connects
//! only to addresses the [`safety`] policy checked.
//! Does not own: which URLs are allowed (`safety`), what is sent or when, retries and
//! their backoff (`hooks`).

pub(crate) mod safety;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::WebhookSettings;
use crate::error::ConfigError;
use crate::stamp::Stamp;
pub(crate) use safety::{Callback, Policy};

/// The header that carries the stamp of the last file in a delivery.
pub(crate) const STAMP_HEADER: &str = "x-filetrigger-stamp";

/// An answer's body is read up to this much (so the connection can be reused), then
/// dropped.
const MAX_ANSWER: usize = 64 * 1024;

type Connector = HttpsConnector<HttpConnector<safety::CheckedResolver>>;

/// What one call came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A `2xx`.
    Delivered,
    /// Anything else; retried.
    Failed(Failure),
}

/// A failed call.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What happened, for the log and the listing (never the URL's query).
    pub(crate) why: String,
    /// The receiver's `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// A `4xx` other than `408` and `429`: retrying soon will not help.
    pub(crate) slow: bool,
    /// The kind, for the log: `status`, `connect`, `timeout`.
    pub(crate) kind: &'static str,
}

/// The client and the rules it calls by.
#[derive(Debug)]
pub(crate) struct Outbound {
    client: Client<Connector, Full<Bytes>>,
    policy: Policy,
    timeout: Duration,
}

impl Outbound {
    /// The client for `settings`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `webhook.ca_file` when it cannot be read.
    pub(crate) fn new(settings: &WebhookSettings) -> Result<Outbound, ConfigError> {
        let bad = |why: String| ConfigError::Invalid {
            key: "webhook.ca_file".into(),
            problem: why,
        };
        // The web PKI roots are built in rather than read from the system: the hardened
        // unit's sandbox and minimal images need no CA bundle, and the trust is the same
        // on every machine; `webhook.ca_file` adds a closed network's (or a test's) own.
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &settings.ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(bad(format!("{}: no PEM certificate in it", path.display())));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let policy = Policy::new(settings);
        let timeout = Duration::from_secs(settings.timeout_s);
        let mut http = HttpConnector::new_with_resolver(policy.resolver());
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(https);
        Ok(Outbound {
            client,
            policy,
            timeout,
        })
    }

    /// The rules callback URLs are checked by.
    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// POSTs `body` (JSON) to `callback`, with `X-Filetrigger-Stamp: stamp` when given.
    pub(crate) async fn post(
        &self,
        callback: &Callback,
        body: Bytes,
        stamp: Option<Stamp>,
    ) -> Outcome {
        let failed = |kind, why: String| {
            Outcome::Failed(Failure {
                why,
                retry_after: None,
                slow: false,
                kind,
            })
        };
        // A name is checked by the resolver on every connection; an address literal here
        // (the connector does not resolve it).
        if let Err(why) = self.policy.check_literal(callback) {
            return failed("connect", why);
        }
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = callback.uri().clone();
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("filetrigger/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(s) = stamp {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                h.insert(STAMP_HEADER, v);
            }
        }
        let call = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // Read a little of the answer so the connection can be reused.
            let mut body = resp.into_body();
            let mut read = 0;
            while read < MAX_ANSWER {
                match body.frame().await {
                    Some(Ok(f)) => read += f.data_ref().map_or(0, Bytes::len),
                    _ => break,
                }
            }
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => failed(
                "timeout",
                format!(
                    "no answer within webhook.timeout_s ({} s)",
                    self.timeout.as_secs()
                ),
            ),
            Ok(Err(e)) => failed("connect", error_chain(&e)),
            Ok(Ok((status, _))) if status.is_success() => Outcome::Delivered,
            Ok(Ok((status, retry_after))) => {
                let retryable = status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error();
                Outcome::Failed(Failure {
                    why: format!("the callback answered {status}"),
                    retry_after,
                    slow: !retryable,
                    kind: "status",
                })
            }
        }
    }
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let left = when.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(100)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!((95..=100).contains(&d.as_secs()), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
