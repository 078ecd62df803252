//! The authorization server's side of the wire: GET a metadata document, POST a form (token,
//! revocation) or JSON (registration). Through the bridge's own agent, so the same TLS identity,
//! trust, proxy and `--allow-http` rules apply as for the MCP server. Every call is bounded in
//! time and in what it reads.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};

use ureq::http::{Method, Request};

use super::dpop::Dpop;
use super::metadata::check_endpoint;
use crate::config::{Config, DpopKey};
use crate::http::diagnose::diagnose;
use crate::http::encoding::{decoded_body, read_limited};
use crate::http::Http;

/// The longest answer read from an authorization server: metadata and tokens are small; a
/// hostile server gets no more memory than this.
pub const MAX_ANSWER: u64 = 256 * 1024;
/// How long one call to the authorization server may take to answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer: status and (bounded) body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// The server's `DPoP-Nonce`, for the next proof.
    pub dpop_nonce: Option<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON of type T, or a message naming `what` and `url`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str, url: &str) -> Result<T, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("{what} at {url} is not valid JSON for its purpose ({e})"))
    }
}

#[derive(Clone)]
pub struct AsHttp {
    config: Arc<Config>,
    http: Http,
    /// The DPoP key, once an authorization server that supports DPoP was found (and DPoP is
    /// not turned off): token requests then carry a proof. Replaced only when it is the TLS key
    /// and the certificate rotates ([`AsHttp::follow_rotation`]).
    dpop: Arc<RwLock<Option<Arc<Dpop>>>>,
}

impl AsHttp {
    pub fn new(config: Arc<Config>, http: Http) -> Self {
        Self {
            config,
            http,
            dpop: Arc::new(RwLock::new(None)),
        }
    }

    /// Use DPoP from now on with the authorization server's algorithms, the key as
    /// `--oauth-dpop-key` says: by default the TLS client key when it fits (every bridge process
    /// holds it, so bound tokens can be shared), else a P-256 key made for this process.
    /// `ephemeral_ok`: whether the default may fall back to a key of this process; None when it
    /// may not. `tls` fails (one line) when the TLS key cannot sign what the server accepts.
    pub fn enable_dpop(
        &self,
        algs: &[String],
        ephemeral_ok: bool,
    ) -> Result<Option<Arc<Dpop>>, String> {
        let mut slot = self.dpop.write().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok(Some(Arc::clone(d)));
        }
        let from_tls = || {
            self.tls_certified()
                .map(|certified| Dpop::from_certified(&certified, algs))
        };
        let made = match self.config.oauth.dpop_key {
            DpopKey::Process => Dpop::generate()?,
            DpopKey::Tls => match from_tls() {
                Some(Ok(dpop)) => dpop,
                Some(Err(e)) => return Err(format!("--oauth-dpop-key tls: {e}")),
                None => {
                    return Err(
                        "--oauth-dpop-key tls: the bridge holds no TLS client key to sign DPoP proofs with".into(),
                    )
                }
            },
            DpopKey::Auto => match from_tls() {
                Some(Ok(dpop)) => dpop,
                _ if !ephemeral_ok => return Ok(None),
                Some(Err(e)) => {
                    log::debug!("OAuth: the TLS key cannot prove DPoP possession here ({e}); using a key of this process");
                    Dpop::generate()?
                }
                None => Dpop::generate()?,
            },
        };
        let made = Arc::new(made);
        *slot = Some(Arc::clone(&made));
        Ok(Some(made))
    }

    pub fn dpop(&self) -> Option<Arc<Dpop>> {
        self.dpop.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Look for a renewed TLS certificate (see [`Http::follow_rotation`]); when the DPoP key is
    /// the TLS key and the renewal brought a new one, proofs are signed by the new key from now
    /// on (a token bound to the old one must then be replaced: its `certificate` differs).
    pub fn follow_rotation(&self) {
        self.http.follow_rotation();
        let Some(dpop) = self.dpop().filter(|d| d.shared) else {
            return;
        };
        let Some(certified) = self.tls_certified() else {
            return;
        };
        match dpop.for_certificate(&certified) {
            Ok(Some(renewed)) => {
                log::debug!(
                    "OAuth: the TLS key was renewed; DPoP proofs are signed with the new one"
                );
                *self.dpop.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(renewed));
            }
            Ok(None) => {}
            Err(e) => log::warn!(
                "the renewed TLS key cannot sign DPoP proofs ({e}); keeping the previous key"
            ),
        }
    }

    /// The TLS client certificate and key of the current (possibly rotated) configuration.
    pub fn tls_certified(&self) -> Option<Arc<rustls::sign::CertifiedKey>> {
        super::tls_certified(&self.http)
    }

    /// RFC 8705 `x5t#S256` of the TLS client certificate presented now (None: no certificate).
    pub fn certificate_thumbprint(&self) -> Option<String> {
        let certified = self.tls_certified()?;
        let leaf = certified.cert.first()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
        Some(Base64UrlUnpadded::encode_string(digest.as_ref()))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn get(&self, url: &str) -> Result<Answer, String> {
        self.send(
            Method::GET,
            url,
            &[("Accept", "application/json")],
            Vec::new(),
        )
    }

    /// POST `form` (application/x-www-form-urlencoded), with an `Authorization` value and a
    /// `DPoP` proof if given.
    pub fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
        authorization: Option<&str>,
        dpop_proof: Option<&str>,
    ) -> Result<Answer, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ];
        if let Some(value) = authorization {
            headers.push(("Authorization", value));
        }
        if let Some(proof) = dpop_proof {
            headers.push(("DPoP", proof));
        }
        self.send(Method::POST, url, &headers, body.into_bytes())
    }

    pub fn post_json(&self, url: &str, value: &serde_json::Value) -> Result<Answer, String> {
        let headers = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ];
        self.send(Method::POST, url, &headers, value.to_string().into_bytes())
    }

    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        check_endpoint(url, self.config.oauth.allow_http)?;
        let mut builder = Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(body)
            .map_err(|e| format!("cannot build the request to {url}: {e}"))?;
        let request = self
            .http
            .agent
            .configure_request(request)
            .timeout_recv_response(Some(ANSWER_TIMEOUT))
            .timeout_per_read(Some(ANSWER_TIMEOUT))
            .build();
        log::debug!("OAuth: {method} {}", shown_url(url));
        let response = self
            .http
            .agent
            .run(request)
            .map_err(|e| self.describe_failure(url, &e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let dpop_nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(decoded_body(response), MAX_ANSWER)
            .map_err(|e| format!("reading the answer of {} failed: {e}", shown_url(url)))?;
        log::debug!("OAuth: {} answered HTTP {status}", shown_url(url));
        Ok(Answer {
            status,
            body,
            content_type,
            dpop_nonce,
        })
    }

    /// The bridge's diagnosis of a failed connection, about the authorization server's host.
    fn describe_failure(&self, url: &str, e: &ureq::Error) -> String {
        match crate::cli::parse_url(url) {
            Ok(as_url) => {
                let mut config = (*self.config).clone();
                config.url = as_url;
                format!(
                    "the authorization server at {} could not be reached: {}",
                    shown_url(url),
                    diagnose(e, &config).message
                )
            }
            Err(_) => format!("the authorization server at {url} could not be reached: {e}"),
        }
    }
}

/// A URL for logs: without its query (an authorization URL's query is not secret, but a
/// callback's is, and no log line needs either).
pub fn shown_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}
