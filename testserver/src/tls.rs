//! rustls server configuration for each `TlsMode`, and the client certificate's common name.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use x509_cert::der::Decode;

use super::{fixture, ServerOptions, StartError, TlsMode};

fn load_certs(name: &str) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let path = fixture(name);
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartError::Fixture(path.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(StartError::Fixture(path, "no CERTIFICATE in file".into()));
    }
    Ok(certs)
}

fn load_key(name: &str) -> Result<PrivateKeyDer<'static>, StartError> {
    let path: PathBuf = fixture(name);
    PrivateKeyDer::from_pem_file(&path).map_err(|e| StartError::Fixture(path, e.to_string()))
}

/// Builds the rustls configuration, or `None` for plain HTTP.
pub(super) fn server_config(opts: &ServerOptions) -> Result<Option<Arc<ServerConfig>>, StartError> {
    if opts.tls == TlsMode::PlainHttp {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in load_certs(opts.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| StartError::Fixture(fixture(opts.client_ca), e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = match opts.tls {
        TlsMode::OptionalClientCert => verifier.allow_unauthenticated(),
        _ => verifier,
    }
    .build()
    .map_err(|e| StartError::Tls(e.to_string()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match opts.tls {
        TlsMode::Tls12Only => &[&rustls::version::TLS12],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(opts.server_cert)?, load_key(opts.server_key)?)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// The subject common name of the client's end-entity certificate, if it sent one.
pub(super) fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let cn = cert.tbs_certificate().subject().common_name().ok()??;
    Some(cn.value().into_owned())
}
