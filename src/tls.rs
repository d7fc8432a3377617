//! TLS: loading the certificate, key and optional client CA into a rustls configuration.
//!
//! Owns: reading the PEM files and building the server configuration (TLS 1.2 and 1.3,
//! ALPN `http/1.1`, client certificates required when a client CA is set).
//! Does not own: accepting connections (`server`) or when to reload (`lib`, on SIGHUP).

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;
use crate::error::ConfigError;

fn bad(key: &str, path: &Path, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: format!("{}: {why}", path.display()),
    }
}

fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(key, path, e))?;
    if certs.is_empty() {
        return Err(bad(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// Builds the server configuration; `None` when TLS is not configured.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `server.tls.*` for an unreadable or invalid file, or
/// a key that does not match the certificate.
pub fn load(settings: &TlsSettings) -> Result<Option<Arc<ServerConfig>>, ConfigError> {
    let (Some(cert_path), Some(key_path)) = (&settings.cert, &settings.key) else {
        return Ok(None);
    };
    let chain = certs("server.tls.cert", cert_path)?;
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| bad("server.tls.key", key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("server.tls.cert", cert_path, e))?;
    let builder = match &settings.client_ca {
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for c in certs("server.tls.client_ca", ca_path)? {
                roots
                    .add(c)
                    .map_err(|e| bad("server.tls.client_ca", ca_path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad("server.tls.client_ca", ca_path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad("server.tls.key", key_path, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
