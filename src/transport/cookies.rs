//! Cookies, kept in memory for the life of the process and never written anywhere: load balancers
//! (AWS ALB, nginx `sticky cookie`, Traefik, HAProxy) pin a session to one backend with a cookie,
//! and a client that never sends it back lands on other backends, which do not know its session.
//!
//! The RFC 6265 rules (domain and path matching, `Secure`, `Max-Age`/`Expires`, host-only
//! cookies) are `cookie_store`'s, the jar reqwest and ureq use. On top of them, one jar per
//! origin (scheme, host, port): RFC 6265 would send a cookie of `127.0.0.1:8443` to
//! `127.0.0.1:9443` too, or one with `Domain=example.com` to every sibling host; here a cookie
//! only ever goes back to the origin that set it.
//!
//! Values are never logged (a cookie is often a session token): only names.

use std::collections::HashMap;
use std::sync::Mutex;

use cookie_store::CookieStore;
use ureq::http::Response;
use ureq::Body;

use crate::config::Url;
use crate::sync::lock;

/// Cookies kept per origin; later ones are refused (RFC 6265 §6.1 asks for at least 50).
const MAX_COOKIES_PER_ORIGIN: usize = 50;
/// The largest `Set-Cookie` kept (RFC 6265 §6.1: at least 4096 bytes per cookie).
const MAX_SET_COOKIE: usize = 4096;
/// Origins with a jar. The bridge talks to one origin; the bound is against surprises.
const MAX_ORIGINS: usize = 16;

#[derive(Default)]
pub struct Cookies {
    jars: Mutex<HashMap<String, CookieStore>>,
}

impl Cookies {
    /// The `Cookie` header value for a request to `url`, if any cookie of its origin matches.
    pub fn header(&self, url: &Url) -> Option<String> {
        let jars = lock(&self.jars);
        // Most servers set no cookie: then no request pays for parsing its URL.
        let jar = jars.get(&url.origin())?;
        let parsed = parse(url)?;
        let value = jar
            .get_request_values(&parsed)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        (!value.is_empty()).then_some(value)
    }

    /// Keep the cookies a response from `url` sets.
    pub fn absorb(&self, url: &Url, response: &Response<Body>) {
        let set_cookies: Vec<&str> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if set_cookies.is_empty() {
            return;
        }
        self.store(url, &set_cookies);
    }

    fn store(&self, url: &Url, set_cookies: &[&str]) {
        let Some(parsed) = parse(url) else { return };
        let mut jars = lock(&self.jars);
        let origin = url.origin();
        if !jars.contains_key(&origin) && jars.len() >= MAX_ORIGINS {
            log::debug!("not keeping cookies of {origin}: too many origins");
            return;
        }
        let jar = jars.entry(origin).or_default();
        for set_cookie in set_cookies {
            let name = set_cookie.split('=').next().unwrap_or_default().trim();
            if set_cookie.len() > MAX_SET_COOKIE {
                log::debug!("cookie {name} not kept: longer than {MAX_SET_COOKIE} bytes");
                continue;
            }
            let known = jar.iter_any().any(|c| c.name() == name);
            if !known && jar.iter_unexpired().count() >= MAX_COOKIES_PER_ORIGIN {
                log::debug!("cookie {name} not kept: {MAX_COOKIES_PER_ORIGIN} cookies already");
                continue;
            }
            match jar.parse(set_cookie, &parsed) {
                Ok(_) => log::debug!("keeping cookie {name} for {url}"),
                // A cookie the rules refuse (a Domain that is not the host's, Secure over http):
                // a browser ignores it silently; so do we, with a note for --debug.
                Err(e) => log::debug!("cookie {name} not kept: {e}"),
            }
        }
    }
}

fn parse(url: &Url) -> Option<url::Url> {
    url::Url::parse(&url.full).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        crate::cli::parse_url(s).unwrap()
    }

    #[test]
    fn a_cookie_goes_back_to_its_origin_and_path_only() {
        let jar = Cookies::default();
        let a = url("https://127.0.0.1:8443/mcp");
        jar.store(
            &a,
            &["route=b1; Path=/", "sid=xyz; Path=/mcp; Secure; HttpOnly"],
        );
        let mut sent: Vec<String> = jar
            .header(&a)
            .unwrap()
            .split("; ")
            .map(str::to_string)
            .collect();
        sent.sort();
        assert_eq!(sent, ["route=b1", "sid=xyz"]);
        assert_eq!(
            jar.header(&url("https://127.0.0.1:8443/other")).as_deref(),
            Some("route=b1"),
            "Path=/mcp is not sent to /other"
        );
        for other in [
            "https://127.0.0.1:9443/mcp",
            "http://127.0.0.1:8443/mcp",
            "https://localhost:8443/mcp",
        ] {
            assert_eq!(jar.header(&url(other)), None, "{other} is another origin");
        }
    }

    #[test]
    fn a_domain_cookie_still_never_leaves_its_origin() {
        let jar = Cookies::default();
        let a = url("https://a.example.com/mcp");
        jar.store(&a, &["lb=1; Domain=example.com; Path=/"]);
        assert_eq!(jar.header(&a).as_deref(), Some("lb=1"));
        assert_eq!(jar.header(&url("https://b.example.com/mcp")), None);
        assert_eq!(jar.header(&url("https://example.com/mcp")), None);
    }

    #[test]
    fn the_rfc_6265_rules_apply_within_an_origin() {
        let jar = Cookies::default();
        // Not loopback: the jar counts loopback http as a secure context (RFC 6265bis).
        let plain = url("http://mcp.example.net:8080/mcp");
        jar.store(
            &plain,
            &[
                "secure=1; Secure",
                "foreign=1; Domain=example.com",
                "gone=1; Max-Age=0",
                "kept=1",
            ],
        );
        assert_eq!(jar.header(&plain).as_deref(), Some("kept=1"));
        jar.store(&plain, &["kept=2"]);
        assert_eq!(jar.header(&plain).as_deref(), Some("kept=2"), "replaced");
        jar.store(&plain, &["kept=; Max-Age=0"]);
        assert_eq!(jar.header(&plain), None, "expired by the server");
    }

    #[test]
    fn the_jar_is_bounded() {
        let jar = Cookies::default();
        let a = url("https://127.0.0.1:8443/mcp");
        let many: Vec<String> = (0..200).map(|n| format!("c{n}=v")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        jar.store(&a, &refs);
        let sent = jar.header(&a).unwrap();
        assert_eq!(sent.split("; ").count(), MAX_COOKIES_PER_ORIGIN);
        let huge = format!("big={}", "x".repeat(MAX_SET_COOKIE));
        jar.store(&a, &[huge.as_str()]);
        assert!(!jar.header(&a).unwrap().contains("big="));
    }
}
