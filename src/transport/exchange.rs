//! One HTTP call to the remote server: the user's extra headers, the timeouts, same-origin
//! redirects (307/308 only: they keep the body), and the diagnosis of a failure. Both transports
//! send through it; neither knows how the other uses it.

use std::sync::Arc;
use std::time::Duration;

use ureq::http::{Method, Request, Response};
use ureq::{AsSendBody, Body};

use super::cookies::Cookies;
use super::error::TransportError;
use crate::config::{Config, Url};
use crate::http::diagnose::{diagnose, Severity};
use crate::http::Http;

/// Same-origin redirects followed per call.
const MAX_REDIRECTS: u32 = 5;

/// How long a call may wait.
#[derive(Clone, Copy, Debug, Default)]
pub struct Waits {
    /// For the response head (None: for ever, a tool call may take hours).
    pub response: Option<Duration>,
    /// For each read of the body (None: for ever): an idle bound for streams.
    pub per_read: Option<Duration>,
}

impl Waits {
    pub fn response(limit: Duration) -> Self {
        Self {
            response: Some(limit),
            per_read: None,
        }
    }
}

#[derive(Clone)]
pub struct Exchange {
    config: Arc<Config>,
    http: Http,
    /// The cookie jar; `None` with `--no-cookies`.
    cookies: Option<Arc<Cookies>>,
}

impl Exchange {
    pub fn new(config: Arc<Config>, http: Http) -> Self {
        let cookies = config.cookies.then(|| Arc::new(Cookies::default()));
        Self {
            config,
            http,
            cookies,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One request with the user's extra headers and the origin's cookies; a failure is
    /// diagnosed, and the cookies the response sets are kept.
    pub fn once<B: AsSendBody>(
        &self,
        method: Method,
        url: &Url,
        headers: &[(String, String)],
        body: B,
        waits: Waits,
    ) -> Result<Response<Body>, TransportError> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(url.full.as_str());
        let mut jar_cookies = self.cookies.as_ref().and_then(|jar| jar.header(url));
        for (name, value) in headers.iter().chain(self.config.headers.iter()) {
            if name.eq_ignore_ascii_case("cookie") {
                // One Cookie header (RFC 6265 §5.4): the user's `--header Cookie:` first.
                if let Some(kept) = jar_cookies.take() {
                    builder = builder.header(name.as_str(), format!("{value}; {kept}"));
                    continue;
                }
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(kept) = jar_cookies {
            builder = builder.header("Cookie", kept);
        }
        let request = builder
            .body(body)
            .map_err(|e| TransportError::Local(format!("cannot build the HTTP request: {e}")))?;
        let request = self
            .http
            .agent
            .configure_request(request)
            .timeout_recv_response(waits.response)
            .timeout_per_read(waits.per_read)
            .build();
        log::debug!("{method} {url}");
        let response = self.http.agent.run(request).map_err(|e| {
            let d = diagnose(&e, &self.config);
            TransportError::Connection {
                message: d.message,
                setup: d.severity == Severity::Setup,
            }
        })?;
        if let Some(jar) = &self.cookies {
            jar.absorb(url, &response);
        }
        Ok(response)
    }

    /// [`Exchange::once`], following same-origin 307/308 redirects. Returns the response and the
    /// URL that gave it (an endpoint that moved).
    pub fn follow<B: AsSendBody + Copy>(
        &self,
        method: Method,
        url: &Url,
        headers: &[(String, String)],
        body: B,
        waits: Waits,
    ) -> Result<(Response<Body>, Url), TransportError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.once(method.clone(), &url, headers, body, waits)?;
            match redirect_target(&resp, &url)? {
                None => return Ok((resp, url)),
                Some(next) => {
                    log::debug!("following redirect to {next}");
                    url = next;
                }
            }
        }
        Err(TransportError::Http {
            status: None,
            message: format!("too many redirects from {url}"),
            frame: None,
            session_gone: false,
        })
    }
}

/// The same-origin target of a 307/308 redirect; other redirects are refused.
fn redirect_target(resp: &Response<Body>, from: &Url) -> Result<Option<Url>, TransportError> {
    let status = resp.status().as_u16();
    if !(300..400).contains(&status) {
        return Ok(None);
    }
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let target = from.join(location).ok_or_else(|| TransportError::Http {
        status: None,
        message: format!(
            "server redirected (HTTP {status}) to an unreadable location '{location}'"
        ),
        frame: None,
        session_gone: false,
    })?;
    if !from.same_origin(&target) {
        return Err(TransportError::Http { status: Some(status), message: format!(
                    "server redirected to another origin ({}); refusing to send the client certificate and headers there: use that URL directly if you trust it",
                    target.origin()
                ), frame: None, session_gone: false });
    }
    if !matches!(status, 307 | 308) {
        return Err(TransportError::Http { status: Some(status), message: format!("server redirected with HTTP {status}, which would drop the message body; use {target} as the URL"), frame: None, session_gone: false });
    }
    Ok(Some(target))
}
