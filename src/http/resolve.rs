//! Name resolution for the agent: ureq's resolver, without its thread where none is needed.
//!
//! ureq bounds a lookup by running it on a thread of its own (default 2 MiB stack) whenever a
//! resolve timeout is set, which we always set (--connect-timeout). That is one short-lived
//! thread per new connection, even for an IP address, which needs no lookup at all: a burst of
//! 200 requests on new connections had up to 317 threads at once instead of 206 (`make bench`,
//! BENCH_ONLY=inflight; the peak RSS did not move beyond noise, 34.5 and 34.8 MiB: those
//! threads are short-lived). An IP literal is answered here, on the caller's thread; a name
//! still goes to ureq's resolver, which bounds the lookup by --connect-timeout (the same burst
//! to `localhost`: 31.2 MiB for the glibc build against 30.4 MiB to 127.0.0.1).

use std::net::{IpAddr, SocketAddr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

#[derive(Debug, Default)]
pub struct LiteralFirst {
    names: DefaultResolver,
}

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match literal(uri) {
            Some(addr) if config.ip_family().keep_wanted([addr].into_iter()).count() == 1 => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            _ => self.names.resolve(uri, config, timeout),
        }
    }
}

/// The socket address of a URI whose host is an IP address (`[::1]` bracketed), with its port
/// or the scheme's default; None for a name, or a URI without a scheme ureq knows.
fn literal(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match uri.port_u16() {
        Some(port) => port,
        None => match uri.scheme_str()? {
            "https" => 443,
            "http" => 80,
            _ => return None,
        },
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::literal;

    fn lit(uri: &str) -> Option<String> {
        literal(&uri.parse().unwrap()).map(|a| a.to_string())
    }

    #[test]
    fn ip_literals_need_no_lookup_and_names_do() {
        assert_eq!(
            lit("https://127.0.0.1:8443/mcp").as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(lit("https://[::1]/mcp").as_deref(), Some("[::1]:443"));
        assert_eq!(lit("http://10.1.2.3/").as_deref(), Some("10.1.2.3:80"));
        assert_eq!(lit("https://localhost:8443/mcp"), None);
        assert_eq!(lit("https://mcp.example.com/mcp"), None);
        // Not an address, though it looks like one to a lenient parser: a name.
        assert_eq!(lit("https://127.1:8443/"), None);
    }
}
