//! One HTTP call to the remote server: the user's extra headers, the OAuth token, the timeouts,
//! same-origin redirects (307/308 only: they keep the body), and the diagnosis of a failure. Both
//! transports send through it; neither knows how the other uses it.
//!
//! Authorization lives here, so that every request of the session carries the token (POSTs, the
//! listening GET, DELETE, the legacy stream): a `401`/`403` with an OAuth challenge goes to the
//! [`Authorizer`], which decides whether the request is sent again with a new token.

use std::sync::Arc;
use std::time::Duration;

use ureq::http::{Method, Request, Response};
use ureq::{AsSendBody, Body};

use super::cookies::Cookies;
use super::error::TransportError;
use crate::config::{Config, Url};
use crate::http::diagnose::{diagnose, Severity};
use crate::http::response::read_short_body;
use crate::http::Http;
use crate::oauth::authorizer::MAX_AUTHORIZATIONS;
use crate::oauth::{challenge, Authorizer, Verdict};

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
    /// MCP authorization; `None` with `--oauth off` (or the user's own `Authorization` header).
    auth: Option<Arc<Authorizer>>,
}

impl Exchange {
    pub fn new(config: Arc<Config>, http: Http) -> Self {
        let cookies = config.cookies.then(|| Arc::new(Cookies::default()));
        Self {
            config,
            http,
            cookies,
            auth: None,
        }
    }

    /// The same exchange, authorizing its requests with `auth`.
    pub fn with_auth(mut self, auth: Option<Arc<Authorizer>>) -> Self {
        self.auth = auth;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The authorization state, for reports.
    pub fn authorizer(&self) -> Option<&Arc<Authorizer>> {
        self.auth.as_ref()
    }

    /// Whether requests carry the user's own `Authorization` header (`--header`).
    pub fn sends_user_authorization(&self) -> bool {
        self.config
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    }

    /// One request with the user's extra headers, the origin's cookies and the OAuth token; a
    /// failure is diagnosed, and the cookies the response sets are kept. A request refused for
    /// its token is sent again once a new token is there (at most once per authorization).
    pub fn once<B: AsSendBody + Copy>(
        &self,
        method: Method,
        url: &Url,
        headers: &[(String, String)],
        body: B,
        waits: Waits,
    ) -> Result<Response<Body>, TransportError> {
        // The token goes only to the MCP server's origin (never along a redirect elsewhere).
        let auth = self
            .auth
            .as_ref()
            .filter(|_| url.same_origin(&self.config.url));
        let Some(auth) = auth else {
            return self.send(method, url, headers, None, None, body, waits);
        };
        let mut retried = false;
        for _ in 0..=MAX_AUTHORIZATIONS {
            let (token, proof) = match auth.headers(method.as_str(), &url.full) {
                Some((token, proof)) => (Some(token), proof),
                None => (None, None),
            };
            let response = self.send(
                method.clone(),
                url,
                headers,
                token.as_deref(),
                proof.as_deref(),
                body,
                waits,
            )?;
            if let Some(nonce) = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
            {
                auth.keep_resource_nonce(nonce);
            }
            let status = response.status().as_u16();
            if status != 401 && status != 403 {
                if response.status().is_success() {
                    auth.succeeded();
                }
                return Ok(response);
            }
            let challenges = challenge::parse_all(
                response
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            match auth.on_challenge(status, &challenges, token.as_deref(), retried) {
                Verdict::PassThrough => return Ok(response),
                Verdict::Retry => {
                    // Read the refusal to its end so that its connection can be reused.
                    let _ = read_short_body(response);
                    retried = true;
                    log::debug!("{method} {url}: sending again with a new token");
                }
                Verdict::Fail(message) => {
                    let _ = read_short_body(response);
                    return Err(TransportError::Authorization(message));
                }
            }
        }
        Err(TransportError::Authorization(format!(
            "the server kept refusing new tokens ({} authorizations); giving up on this request",
            MAX_AUTHORIZATIONS + 1
        )))
    }

    /// One HTTP request, with `token` as its `Authorization` (and `proof` as its `DPoP`) when
    /// given.
    #[allow(clippy::too_many_arguments)]
    fn send<B: AsSendBody>(
        &self,
        method: Method,
        url: &Url,
        headers: &[(String, String)],
        token: Option<&str>,
        proof: Option<&str>,
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
        if let Some(token) = token {
            builder = builder.header("Authorization", token);
        }
        if let Some(proof) = proof {
            builder = builder.header("DPoP", proof);
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
