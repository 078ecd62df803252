//! Handshake time with a client key on a PKCS#11 token (SoftHSM2) against the same key in a file:
//! full TLS handshakes (new TCP connection, no resumption) with the test server that requires
//! client certificates, sequentially and 50 at once. `make bench-pkcs11`; needs softhsm2 + opensc.

#[path = "../tests/support/softhsm.rs"]
#[allow(dead_code)] // the test helpers the benchmark does not need
mod softhsm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_secure_remote::config::{
    parse_selector, ClientIdentity, Pkcs11Identity, Platform, Secret, StoreIdentity, TlsOptions,
    TlsVersion, TokenCertSource,
};
use mcp_secure_remote::tls::{client_config, Pkcs11Uri};
use mcp_test_server::{ServerOptions, TestServer};
use rustls::ClientConfig;

fn fixture(name: &str) -> PathBuf {
    mcp_test_server::fixture(name)
}

const SEQUENTIAL: usize = 200;
const CONCURRENT: usize = 50;

fn handshake(config: &Arc<ClientConfig>, port: u16) -> Duration {
    let start = Instant::now();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    start.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(label: &str, config: Arc<ClientConfig>, port: u16) {
    // Warm-up (first session, module caches).
    handshake(&config, port);
    let mut times: Vec<Duration> = (0..SEQUENTIAL).map(|_| handshake(&config, port)).collect();
    times.sort();
    let p50 = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let start = Instant::now();
    let threads: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let config = Arc::clone(&config);
            std::thread::spawn(move || handshake(&config, port))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let burst = start.elapsed();
    println!(
        "{label:<34} p50 {:>6.2} ms  p90 {:>6.2} ms  {CONCURRENT} at once {:>7.1} ms",
        ms(p50),
        ms(p90),
        ms(burst)
    );
}

fn main() {
    let hsm = softhsm::SoftHsm::new("bench");
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let srv = TestServer::start(ServerOptions::default());
    println!(
        "full handshakes to 127.0.0.1 (server requires a client certificate); {SEQUENTIAL} sequential, then {CONCURRENT} concurrent"
    );
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let v = if version == TlsVersion::Tls13 {
            "TLS 1.3"
        } else {
            "TLS 1.2"
        };
        for (object, key_file, cert_file, kind) in [
            ("client-rsa", "client-rsa.key", "client-rsa.crt", "RSA 2048"),
            ("client-ec", "client-ec.key", "client-ec.crt", "ECDSA P-256"),
        ] {
            let file = TlsOptions {
                identity: Some(ClientIdentity::PemFiles {
                    cert: fixture(cert_file),
                    key: fixture(key_file),
                    passphrase: None,
                }),
                ca: Some(fixture("ca.crt")),
                min_version: Some(version),
                ..TlsOptions::default()
            };
            let token = TlsOptions {
                identity: Some(ClientIdentity::Pkcs11(Box::new(Pkcs11Identity {
                    key: Pkcs11Uri::parse(&hsm.uri(object)).unwrap(),
                    cert: TokenCertSource::BesideKey,
                    module: Some(hsm.module.clone()),
                    pin: Some(Secret::new(softhsm::PIN.to_string())),
                }))),
                ..file.clone()
            };
            let mut file_config = (*client_config(&file).unwrap().config).clone();
            let mut token_config = (*client_config(&token).unwrap().config).clone();
            if version == TlsVersion::Tls12 {
                // Only 1.2 offered: rebuild with that version alone.
                file_config = only_tls12(&file);
                token_config = only_tls12(&token);
            }
            // No resumption: every handshake signs.
            file_config.resumption = rustls::client::Resumption::disabled();
            token_config.resumption = rustls::client::Resumption::disabled();
            run(
                &format!("{v} {kind} file key"),
                Arc::new(file_config),
                srv.port(),
            );
            run(
                &format!("{v} {kind} SoftHSM key"),
                Arc::new(token_config),
                srv.port(),
            );
        }
    }
    selectors(&hsm, srv.port());
}

/// A `--tls-cert` selector over the whole token (its 3 identities): the identity is chosen in
/// each handshake from the server's CA names, against one named identity.
fn selectors(hsm: &softhsm::SoftHsm, port: u16) {
    for (label, selector) in [
        (
            "TLS 1.3 selector: client-rsa",
            "pkcs11:token=mcp;object=client-rsa",
        ),
        (
            "TLS 1.3 selector: client-ec384",
            "pkcs11:token=mcp;object=client-ec384",
        ),
        // All three are from the CA the server names: the one expiring last is presented.
        ("TLS 1.3 selector: 3, chosen", "pkcs11:token=mcp"),
    ] {
        let opts = TlsOptions {
            identity: Some(ClientIdentity::Store(Box::new(StoreIdentity {
                selector: parse_selector(selector, Platform::current(), true).unwrap(),
                module: Some(hsm.module.clone()),
                pin: Some(Secret::new(softhsm::PIN.to_string())),
            }))),
            ca: Some(fixture("ca.crt")),
            min_version: Some(TlsVersion::Tls13),
            ..TlsOptions::default()
        };
        let mut config = (*client_config(&opts).unwrap().config).clone();
        config.resumption = rustls::client::Resumption::disabled();
        // Which one the handshake presents (the resolver as rustls calls it, with no CA names).
        let schemes = [
            rustls::SignatureScheme::RSA_PSS_SHA256,
            rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
            rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
        ];
        if let Some(chosen) = config.client_auth_cert_resolver.resolve(&[], &schemes) {
            let info = mcp_secure_remote::tls::CertInfo::from_der(&chosen.cert[0]).unwrap();
            println!("  {selector} presents {}", info.subject);
        }
        run(label, Arc::new(config), port);
    }
}

/// The same client identity with TLS 1.2 only (the crate's options can only set a minimum).
fn only_tls12(opts: &TlsOptions) -> ClientConfig {
    let tls = client_config(opts).unwrap();
    let provider = mcp_secure_remote::tls::crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(fixture("ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::clone(&tls.config.client_auth_cert_resolver))
}
