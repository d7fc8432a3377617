//! A small HTTP/1.1 client for `status` and `poll`: GET an absolute URL, over TLS when
//! it is https, with the credentials the administrator gave, keeping one connection alive.
//!
//! Owns: connecting (TCP, rustls with the system's roots plus the given PEM files),
//! sending a GET on a hyper `client::conn::http1` connection, reading the whole answer.
//! Does not own: what to ask or what the answer means (`status`, `poll`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// The system's CA bundle (Debian's ca-certificates).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used.
    #[error("`{url}`: {problem}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A credential cannot go in a header.
    #[error("{0} is not a valid header value")]
    Header(String),
    /// A PEM file to trust cannot be read.
    #[error("{path}: {problem}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// No connection, or the connection failed.
    #[error("{authority}: {problem}")]
    Connect {
        /// host:port
        authority: String,
        /// What failed.
        problem: String,
    },
    /// No answer within the timeout.
    #[error("{authority}: no answer within {}s", TIMEOUT.as_secs())]
    Timeout {
        /// host:port
        authority: String,
    },
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// A header as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The client: headers sent with every request, trusted CAs, one kept-alive connection.
pub struct Client {
    headers: Vec<(HeaderName, HeaderValue)>,
    roots: Arc<RootCertStore>,
    conn: Option<(String, SendRequest<Empty<Bytes>>)>,
}

impl Client {
    /// A client trusting the system's CAs.
    pub fn new() -> Client {
        let mut roots = RootCertStore::empty();
        if let Ok(iter) = CertificateDer::pem_file_iter(SYSTEM_CAS) {
            roots.add_parsable_certificates(iter.filter_map(Result::ok));
        }
        let ua = concat!("filetrigger-cli/", env!("CARGO_PKG_VERSION"));
        Client {
            headers: vec![(USER_AGENT, HeaderValue::from_static(ua))],
            roots: Arc::new(roots),
            conn: None,
        }
    }

    /// Sends HTTP Basic credentials (`user:password`) with every request.
    pub fn basic(&mut self, user_password: &str) {
        let token = format!("Basic {}", B64.encode(user_password));
        if let Ok(mut v) = HeaderValue::from_str(&token) {
            v.set_sensitive(true);
            self.headers.push((AUTHORIZATION, v));
        }
    }

    /// Sends `name: value` with every request.
    ///
    /// # Errors
    /// [`ClientError::Header`] when either is not valid in a header.
    pub fn header(&mut self, name: &str, value: &str) -> Result<(), ClientError> {
        let n = name
            .parse::<HeaderName>()
            .map_err(|_| ClientError::Header(format!("`{name}`")))?;
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| ClientError::Header(format!("the value for {name}")))?;
        v.set_sensitive(true);
        self.headers.push((n, v));
        Ok(())
    }

    /// Also trusts the certificates in these PEM files (a self-signed server certificate,
    /// a private CA).
    ///
    /// # Errors
    /// [`ClientError::Ca`] for a file that cannot be read or holds no certificate.
    pub fn trust(&mut self, files: &[&Path]) -> Result<(), ClientError> {
        let mut roots = (*self.roots).clone();
        for path in files {
            let bad = |problem: String| ClientError::Ca {
                path: path.display().to_string(),
                problem,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("no usable PEM certificate in it".into()));
            }
        }
        self.roots = Arc::new(roots);
        Ok(())
    }

    /// GETs an absolute `http://` or `https://` URL and reads the whole answer.
    ///
    /// # Errors
    /// [`ClientError`] when the URL is unusable or no answer came.
    pub async fn get(&mut self, url: &str) -> Result<Reply, ClientError> {
        self.request(hyper::Method::GET, url).await
    }

    /// Sends a request without a body (`GET`, `DELETE`) to an absolute `http://` or
    /// `https://` URL and reads the whole answer.
    ///
    /// # Errors
    /// [`ClientError`] when the URL is unusable or no answer came.
    pub async fn request(
        &mut self,
        method: hyper::Method,
        url: &str,
    ) -> Result<Reply, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ClientError::Url {
                url: url.into(),
                problem: e.to_string(),
            })?;
        let bad_url = |problem: &str| ClientError::Url {
            url: url.into(),
            problem: problem.into(),
        };
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad_url("only http:// and https:// URLs")),
        };
        let authority = uri.authority().ok_or_else(|| bad_url("no host"))?.clone();
        let key = format!("{}://{authority}", if tls { "https" } else { "http" });
        let mut req = Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .body(Empty::<Bytes>::new())
            .map_err(|e| bad_url(&e.to_string()))?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad_url("bad host"))?;
        req.headers_mut().insert(HOST, host);
        for (n, v) in &self.headers {
            req.headers_mut().append(n.clone(), v.clone());
        }
        let name = authority.as_str().to_string();
        let reused = matches!(&self.conn, Some((k, s)) if *k == key && !s.is_closed());
        if !reused {
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
            let sender = tokio::time::timeout(TIMEOUT, self.connect(host, port, tls))
                .await
                .map_err(|_| ClientError::Timeout {
                    authority: name.clone(),
                })?
                .map_err(|problem| ClientError::Connect {
                    authority: name.clone(),
                    problem,
                })?;
            self.conn = Some((key, sender));
        }
        let Some((_, sender)) = self.conn.as_mut() else {
            return Err(ClientError::Connect {
                authority: name,
                problem: "no connection".into(),
            });
        };
        let exchange = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let result = tokio::time::timeout(TIMEOUT, exchange).await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.conn = None;
                Err(ClientError::Connect {
                    authority: name,
                    problem: e.to_string(),
                })
            }
            Err(_) => {
                self.conn = None;
                Err(ClientError::Timeout { authority: name })
            }
        }
    }

    /// Opens a connection and starts its driver task.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<SendRequest<Empty<Bytes>>, String> {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        if !tls {
            return handshake(tcp).await;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        handshake(stream).await
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// HTTP/1.1 on an open stream; the connection is driven by its own task.
async fn handshake<S>(io: S) -> Result<SendRequest<Empty<Bytes>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
