//! `mcp-secure-remote-client --list-identities [server-url]`: what the `--tls-cert` selector's
//! source holds (subject, issuer, expiry, key type, where the key lives, the selector to copy),
//! one block per identity; with a URL, a TLS handshake that presents no certificate and records
//! the CA names of the server's CertificateRequest marks those the server would accept.
//!
//! The handshake goes through the proxy the bridge would use (`--proxy`, HTTPS_PROXY and
//! NO_PROXY), by a CONNECT of its own (`http::tunnel`): it only needs the server's first flight,
//! and no request is sent.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::config::{ClientIdentity, Config};
use crate::http;
use crate::tls::{self, Listed};

/// Lists, prints on stdout, and returns the exit code (0, or 1 after logging why).
pub fn run(config: &Config, url_given: bool) -> i32 {
    let Some(ClientIdentity::Store(store)) = &config.tls.identity else {
        log::error!("--list-identities needs a --tls-cert selector");
        return 2;
    };
    let (source, listed) = match tls::list_identities(store) {
        Ok(found) => found,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    let names = if url_given {
        match ca_names(config) {
            Ok(names) => Some(names),
            Err(e) => {
                log::error!("{e}");
                return 1;
            }
        }
    } else {
        None
    };
    let text = render(
        &format!("{source} (--tls-cert {})", store.selector),
        &listed,
        names.as_ref().map(|n| (config.url.authority(), n)),
    );
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) => {
            log::error!("cannot write to stdout: {e}");
            1
        }
    }
}

/// The listing as text: a header, then one block per identity.
fn render(
    source: &str,
    listed: &[Listed],
    server: Option<(String, &Option<Vec<Vec<u8>>>)>,
) -> String {
    let mut out = String::new();
    let left_out = listed.iter().filter(|id| !id.selected).count();
    let _ = writeln!(
        out,
        "{} in {source}",
        match listed.len() - left_out {
            1 => "1 identity".to_string(),
            n => format!("{n} identities"),
        }
    );
    if left_out > 0 {
        let _ = writeln!(
            out,
            "({left_out} more in the source, left out by the selector)"
        );
    }
    if let Some((target, names)) = &server {
        let _ = match names {
            Some(names) => writeln!(
                out,
                "{target} asks for a client certificate issued by {}",
                tls::describe_ca_names(names)
            ),
            None => writeln!(out, "{target} asks for no client certificate"),
        };
    }
    for id in listed.iter().filter(|id| id.selected) {
        let _ = writeln!(out, "\n{}", id.subject);
        let _ = writeln!(out, "  issuer    {}", id.issuer);
        let expired = id.not_after < std::time::SystemTime::now();
        let _ = writeln!(
            out,
            "  expires   {}{}",
            tls::format_utc(id.not_after),
            if expired { " (EXPIRED)" } else { "" }
        );
        let _ = writeln!(out, "  key       {}, {}", id.key_type, id.key_location);
        let _ = writeln!(out, "  sha1      {}", id.sha1);
        let _ = writeln!(out, "  selector  --tls-cert '{}'", id.selector);
        if let Some((target, names)) = &server {
            let verdict = match names {
                None => "not asked for".to_string(),
                Some(names) => {
                    let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
                    if id.accepted_by(&names) {
                        "would accept it".to_string()
                    } else if expired {
                        "would not accept it: expired".to_string()
                    } else {
                        "would not accept it: not issued by a CA it asks for (or not for \
                         clientAuth)"
                            .to_string()
                    }
                }
            };
            let _ = writeln!(out, "  {target:<9} {verdict}");
        }
    }
    out
}

/// The proxy the bridge would reach the server through, if any.
fn through_proxy(config: &Config) -> Result<Option<ureq::Proxy>, String> {
    let proxy = http::agent::chosen_proxy(config).map_err(|e| e.to_string())?;
    let uri = config
        .url
        .full
        .parse::<ureq::http::Uri>()
        .map_err(|e| format!("{}: {e}", config.url.full))?;
    Ok(proxy.filter(|p| !p.is_no_proxy(&uri)))
}

/// The CA names the server's CertificateRequest carries (`None`: it asks for no certificate).
fn ca_names(config: &Config) -> Result<Option<Vec<Vec<u8>>>, String> {
    let target = config.url.authority();
    let (tls_config, seen) = tls::ca_names_probe(&config.tls).map_err(|e| e.to_string())?;
    let host = config
        .tls
        .servername
        .clone()
        .unwrap_or_else(|| config.url.host.clone());
    let name = ServerName::try_from(host.clone())
        .map_err(|_| format!("'{host}' is not a valid TLS server name"))?;
    // Behind a proxy, the proxy resolves the server's name.
    let sock = match through_proxy(config)? {
        Some(proxy) => http::tunnel::open(
            &proxy,
            &config.url.host,
            config.url.port,
            config.connect_timeout,
        )?,
        None => {
            let addr = (config.url.host.as_str(), config.url.port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {target}: {e}"))?
                .next()
                .ok_or_else(|| format!("cannot resolve {target}: no address"))?;
            TcpStream::connect_timeout(&addr, config.connect_timeout)
                .map_err(|e| format!("cannot connect to {target}: {e}"))?
        }
    };
    let _ = sock.set_read_timeout(Some(config.connect_timeout));
    let _ = sock.set_write_timeout(Some(config.connect_timeout));
    let conn = ClientConnection::new(Arc::clone(&tls_config), name)
        .map_err(|e| format!("TLS with {target}: {e}"))?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            // A TLS 1.2 server that required a certificate ends the handshake once it has
            // none: its request, the part wanted, came before.
            if seen.names().is_some() {
                break;
            }
            return Err(format!("TLS handshake with {target} failed: {e}"));
        }
    }
    Ok(seen.names())
}
