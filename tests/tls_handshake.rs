//! Real TLS handshakes over 127.0.0.1 between a `ClientConfig` from `tls::client_config` and an
//! in-process rustls server that requires a client certificate issued by fixtures/ca.crt.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mcp_secure_remote::config::{ClientIdentity, Secret, TlsOptions, TlsVersion};
use mcp_secure_remote::tls::{client_config, crypto_provider, CertInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WantsServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConnection, ConfigBuilder, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
    SupportedProtocolVersion,
};

const PASS: &str = "fixture-pass";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn certs(name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(fixture(name))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// What the server saw of one connection: the client's leaf certificate, or its error.
type ServerOutcome = Result<Option<CertificateDer<'static>>, String>;

struct TestServer {
    addr: SocketAddr,
    handle: JoinHandle<ServerOutcome>,
}

impl TestServer {
    /// Serves one connection with `cert`/`key`, allowing only `versions`, requiring a client
    /// certificate from fixtures/ca.crt. Reads "ping\n", answers "pong\n".
    fn start(cert: &str, key: &str, versions: &[&'static SupportedProtocolVersion]) -> TestServer {
        let key = PrivateKeyDer::from_pem_file(fixture(key)).unwrap();
        let config = server_config(versions)
            .with_single_cert(certs(cert), key)
            .unwrap();
        Self::start_with(config)
    }

    fn start_with(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || serve_one(&listener, Arc::new(config)));
        TestServer { addr, handle }
    }

    fn outcome(self) -> ServerOutcome {
        self.handle.join().unwrap()
    }
}

/// A server configuration that requires client certificates issued by fixtures/ca.crt.
fn server_config(
    versions: &[&'static SupportedProtocolVersion],
) -> ConfigBuilder<ServerConfig, WantsServerCert> {
    let provider = crypto_provider();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs("ca.crt"));
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_client_cert_verifier(verifier)
}

fn serve_one(listener: &TcpListener, config: Arc<ServerConfig>) -> ServerOutcome {
    let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, tcp);
    let mut ping = [0u8; 5];
    tls.read_exact(&mut ping).map_err(|e| e.to_string())?;
    assert_eq!(&ping, b"ping\n");
    let client_cert = tls
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.clone().into_owned());
    tls.write_all(b"pong\n").map_err(|e| e.to_string())?;
    tls.conn.send_close_notify();
    tls.flush().map_err(|e| e.to_string())?;
    Ok(client_cert)
}

/// Connects with our configuration, sends "ping\n" and expects "pong\n". Returns the error text.
fn exchange(opts: &TlsOptions, addr: SocketAddr, server_name: &str) -> Result<(), String> {
    let tls = client_config(opts).map_err(|e| format!("client_config: {e}"))?;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let conn = ClientConnection::new(tls.config, name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut stream = StreamOwned::new(conn, tcp);
    stream.write_all(b"ping\n").map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut pong = [0u8; 5];
    stream.read_exact(&mut pong).map_err(|e| e.to_string())?;
    if &pong == b"pong\n" {
        Ok(())
    } else {
        Err(format!("unexpected reply {pong:?}"))
    }
}

fn pem_identity(cert: &str, key: &str, pass: Option<&str>) -> TlsOptions {
    TlsOptions {
        identity: Some(ClientIdentity::PemFiles {
            cert: fixture(cert),
            key: fixture(key),
            passphrase: pass.map(|p| Secret::new(p.to_string())),
        }),
        ca: Some(fixture("ca.crt")),
        ..TlsOptions::default()
    }
}

fn pfx_identity(pfx: &str, pass: Option<&str>) -> TlsOptions {
    TlsOptions {
        identity: Some(ClientIdentity::Pkcs12 {
            bundle: fixture(pfx),
            passphrase: pass.map(|p| Secret::new(p.to_string())),
        }),
        ca: Some(fixture("ca.crt")),
        ..TlsOptions::default()
    }
}

const BOTH_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// Runs one handshake of `opts` against the standard server and returns the client cert it saw.
fn accepted_client_cert(opts: &TlsOptions) -> CertificateDer<'static> {
    let server = TestServer::start("server.crt", "server.key", BOTH_VERSIONS);
    let client = exchange(opts, server.addr, "localhost");
    let seen = server.outcome();
    client.unwrap_or_else(|e| panic!("client failed: {e}; server: {seen:?}"));
    seen.unwrap().expect("server saw no client certificate")
}

#[test]
fn server_sees_each_pem_identity() {
    for (cert, key, pass, cn) in [
        (
            "client-rsa.crt",
            "client-rsa.key",
            None,
            "mcp-test-client-rsa",
        ),
        (
            "client-rsa.crt",
            "client-rsa.pkcs1.key",
            None,
            "mcp-test-client-rsa",
        ),
        (
            "client-rsa.crt",
            "client-rsa.enc.key",
            Some(PASS),
            "mcp-test-client-rsa",
        ),
        (
            "client-rsa.crt",
            "client-rsa.legacy-enc.key",
            Some(PASS),
            "mcp-test-client-rsa",
        ),
        (
            "client-rsa.crt",
            "client-rsa.des3-enc.key",
            Some(PASS),
            "mcp-test-client-rsa",
        ),
        ("client-ec.crt", "client-ec.key", None, "mcp-test-client-ec"),
        (
            "client-ec.crt",
            "client-ec.pkcs8.key",
            None,
            "mcp-test-client-ec",
        ),
        (
            "client-ec384.crt",
            "client-ec384.key",
            None,
            "mcp-test-client-ec384",
        ),
        (
            "client-ed25519.crt",
            "client-ed25519.key",
            None,
            "mcp-test-client-ed25519",
        ),
    ] {
        let seen = accepted_client_cert(&pem_identity(cert, key, pass));
        assert_eq!(seen, certs(cert)[0], "{cert} + {key}");
        assert_eq!(CertInfo::from_der(&seen).unwrap().common_name(), Some(cn));
    }
}

#[test]
fn server_sees_each_pkcs12_identity() {
    for (pfx, pass) in [
        ("client.p12", Some(PASS)),
        ("client-legacy.p12", Some(PASS)),
        ("client-nopass.p12", None),
    ] {
        let seen = accepted_client_cert(&pfx_identity(pfx, pass));
        assert_eq!(seen, certs("client-rsa.crt")[0], "{pfx}");
    }
}

#[test]
fn intermediate_in_the_cert_file_is_sent_along() {
    // The server trusts only the root: the handshake works only if the intermediate is sent.
    let seen = accepted_client_cert(&pem_identity("client-chain.crt", "client-chain.key", None));
    assert_eq!(seen, certs("client-chain.crt")[0]);
}

#[test]
fn server_refuses_client_from_untrusted_ca() {
    let server = TestServer::start("server.crt", "server.key", BOTH_VERSIONS);
    let client = exchange(
        &pem_identity("rogue-client.crt", "rogue-client.key", None),
        server.addr,
        "localhost",
    );
    let seen = server.outcome();
    assert!(client.is_err(), "client should have been refused");
    let server_error = seen.expect_err("server should have refused the rogue client");
    assert!(server_error.contains("UnknownIssuer"), "{server_error}");
}

#[test]
fn server_refuses_client_without_certificate() {
    let server = TestServer::start("server.crt", "server.key", BOTH_VERSIONS);
    let opts = TlsOptions {
        ca: Some(fixture("ca.crt")),
        ..TlsOptions::default()
    };
    let client = exchange(&opts, server.addr, "localhost");
    assert!(client.is_err());
    assert!(server.outcome().is_err());
}

#[test]
fn servername_override_matches_a_certificate_for_another_name() {
    let opts = pem_identity("client-rsa.crt", "client-rsa.key", None);

    let server = TestServer::start("server-internal.crt", "server-internal.key", BOTH_VERSIONS);
    let client = exchange(&opts, server.addr, "mcp.internal.test");
    let seen = server.outcome();
    client.unwrap_or_else(|e| panic!("client failed: {e}; server: {seen:?}"));

    let server = TestServer::start("server-internal.crt", "server-internal.key", BOTH_VERSIONS);
    let err = exchange(&opts, server.addr, "127.0.0.1").unwrap_err();
    let _ = server.outcome();
    assert!(err.contains("not valid for name"), "{err}");
}

#[test]
fn minimum_tls13_refuses_a_tls12_only_server() {
    let mut opts = pem_identity("client-rsa.crt", "client-rsa.key", None);

    let server = TestServer::start("server.crt", "server.key", TLS12_ONLY);
    exchange(&opts, server.addr, "localhost").expect("default allows TLS 1.2");
    server.outcome().unwrap();

    opts.min_version = Some(TlsVersion::Tls12);
    let server = TestServer::start("server.crt", "server.key", TLS12_ONLY);
    exchange(&opts, server.addr, "localhost").expect("TLSv1.2 minimum allows TLS 1.2");
    server.outcome().unwrap();

    opts.min_version = Some(TlsVersion::Tls13);
    let server = TestServer::start("server.crt", "server.key", TLS12_ONLY);
    let err = exchange(&opts, server.addr, "localhost").unwrap_err();
    let _ = server.outcome();
    assert!(err.contains("ProtocolVersion"), "{err}");
}

#[test]
fn default_roots_honour_ssl_cert_file_and_tls_ca_replaces_them() {
    // SSL_CERT_FILE makes the test CA a "system" root for this process. Every other test in this
    // file passes --tls-ca, so none of them depends on the system roots this changes.
    std::env::set_var("SSL_CERT_FILE", fixture("ca.crt"));
    let mut opts = pem_identity("client-rsa.crt", "client-rsa.key", None);
    opts.ca = None;
    let server = TestServer::start("server.crt", "server.key", BOTH_VERSIONS);
    exchange(&opts, server.addr, "localhost").expect("system roots (SSL_CERT_FILE) trust ca.crt");
    server.outcome().unwrap();

    // --tls-ca replaces the system roots instead of adding to them: ca.crt is no longer trusted.
    opts.ca = Some(fixture("rogue-ca.crt"));
    let server = TestServer::start("server.crt", "server.key", BOTH_VERSIONS);
    let err = exchange(&opts, server.addr, "localhost").unwrap_err();
    let _ = server.outcome();
    assert!(err.contains("UnknownIssuer"), "{err}");

    // ... and what it holds is trusted.
    let server = TestServer::start("rogue-server.crt", "rogue-server.key", BOTH_VERSIONS);
    exchange(&opts, server.addr, "localhost").expect("--tls-ca rogue-ca.crt trusts rogue-server");
    server.outcome().unwrap();
}

#[test]
fn skip_verify_is_the_only_way_to_an_untrusted_server() {
    let mut opts = pem_identity("client-rsa.crt", "client-rsa.key", None);

    let server = TestServer::start("rogue-server.crt", "rogue-server.key", BOTH_VERSIONS);
    let err = exchange(&opts, server.addr, "localhost").unwrap_err();
    let _ = server.outcome();
    assert!(err.contains("UnknownIssuer"), "{err}");

    opts.insecure_skip_verify = true;
    let server = TestServer::start("rogue-server.crt", "rogue-server.key", BOTH_VERSIONS);
    exchange(&opts, server.addr, "localhost").expect("skip-verify accepts the rogue server");
    assert_eq!(
        server.outcome().unwrap().unwrap(),
        certs("client-rsa.crt")[0]
    );

    // Names are not checked either, and TLS 1.2 signatures are verified by the same verifier.
    let server = TestServer::start("server-internal.crt", "server-internal.key", TLS12_ONLY);
    exchange(&opts, server.addr, "127.0.0.1").expect("skip-verify ignores the name");
    server.outcome().unwrap();
}

/// Presents a fixed certificate with a fixed key, without checking that they belong together.
#[derive(Debug)]
struct MismatchedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for MismatchedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[test]
fn skip_verify_still_checks_handshake_signatures() {
    // The server shows server.crt but signs with another P-256 key (an impostor that copied the
    // certificate): even with verification off, the handshake signature must be checked.
    let impostor_key = PrivateKeyDer::from_pem_file(fixture("rogue-server.key")).unwrap();
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(impostor_key)
        .unwrap();
    let certified = CertifiedKey::new(certs("server.crt"), signing_key);
    let mut opts = pem_identity("client-rsa.crt", "client-rsa.key", None);
    opts.insecure_skip_verify = true;

    for versions in [BOTH_VERSIONS, TLS12_ONLY] {
        let config = server_config(versions)
            .with_cert_resolver(Arc::new(MismatchedCert(Arc::new(certified.clone()))));
        let server = TestServer::start_with(config);
        let err = exchange(&opts, server.addr, "localhost").unwrap_err();
        let _ = server.outcome();
        assert!(err.contains("BadSignature"), "{err}");
    }
}
