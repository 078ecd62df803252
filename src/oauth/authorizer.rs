//! The one authorization state of a bridge process: the tokens for the MCP server, and the
//! policy that decides what to do when the server refuses a request. The transport asks it for
//! the `Authorization` header of each request and hands it every OAuth challenge; it never parses
//! metadata or tokens itself.
//!
//! - A login runs on a thread of its own (the browser may take minutes); the request that met the
//!   challenge waits for it up to `--oauth-login-wait`, others that meet a challenge meanwhile wait
//!   for the same login. A login that outlives the wait still completes for the next request.
//! - Refreshes are single-flight in the process and, with a shared store, across processes (the
//!   per-server lock; the store is re-read under it, so a rotated refresh token is never redeemed
//!   twice).
//! - A refused token is refreshed or re-obtained once, never in a loop: a token refused right
//!   after it was obtained fails the request; step-up (403 `insufficient_scope`) is limited to
//!   [`MAX_AUTHORIZATIONS`]; logins are braked.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::as_http::AsHttp;
use super::browser::Opener;
use super::challenge::{self, Challenge};
use super::dpop::Side;
use super::flow::{self, Discovered, LoginPlan};
use super::lock;
use super::machine::{self, MachineClient};
use super::metadata;
use super::registration::ClientConfig;
use super::store::TokenStore;
use super::tokens::{now, Record, Tokens};
use crate::config::{DpopKey, DpopMode};
use crate::sync::lock as lock_mutex;
use crate::transport::stop::Stop;

/// Authorization requests in a row without a request succeeding (the first login included),
/// after which a scope the server keeps refusing is given up (MCP 2025-11-25 §10.1.2).
pub const MAX_AUTHORIZATIONS: u32 = 3;
/// How long a login may take in the browser before it is abandoned (SSO with MFA is slow).
pub const LOGIN_BOUND: Duration = Duration::from_secs(600);
/// Logins started within [`BRAKE_WINDOW`] beyond which the bridge stops starting more.
const BRAKE_LOGINS: usize = 5;
const BRAKE_WINDOW: Duration = Duration::from_secs(30);
/// How long a request waits for another thread's refresh.
const REFRESH_WAIT: Duration = Duration::from_secs(45);
/// How often waits look at the bridge's stop.
const POLL: Duration = Duration::from_millis(100);

/// What the transport does after a challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new token is there: send the request again.
    Retry,
    /// Not an OAuth matter: hand the answer on as it is.
    PassThrough,
    /// The request fails with this message (one line, says what to do).
    Fail(String),
}

/// The settings the authorizer needs (from the configuration).
pub struct Settings {
    /// A machine grant's client (`--oauth-grant` other than `authorization-code`).
    pub machine: Option<MachineClient>,
    /// A configuration that could not be loaded (an unreadable `--oauth-jwt-key`): every
    /// authorization fails with it.
    pub config_error: Option<String>,
    pub client: ClientConfig,
    pub redirect_uri: Option<String>,
    pub opener: Opener,
    pub login_wait: Duration,
    /// When to use DPoP where the authorization server offers it (`--oauth-dpop`).
    pub dpop: DpopMode,
    /// Said once, at the first login, when the store will not keep it across restarts.
    pub store_warning: Option<String>,
}

pub struct Authorizer {
    /// Itself, for the renewal thread it starts.
    me: std::sync::Weak<Authorizer>,
    http: AsHttp,
    mcp_url: url::Url,
    settings: Settings,
    store: Arc<dyn TokenStore>,
    /// The store key: one record per MCP server and client configuration.
    key: String,
    stop: Arc<Stop>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    record: Record,
    /// This process's discovery (scopes the resource lists).
    discovered: Option<Discovered>,
    login_running: bool,
    /// The running login has shown its authorization URL (it is past discovery and registration).
    login_shown: bool,
    /// Bumped when a login ends; `last_login` is its outcome.
    logins_ended: u64,
    last_login: Option<Result<(), String>>,
    refreshing: bool,
    authorizations: u32,
    recent_logins: Vec<Instant>,
    /// A machine grant the authorization server refused: final (no retry, no other grant).
    machine_refused: Option<String>,
    /// The access token whose renewal failed last (not tried twice for one request).
    refresh_failed: Option<String>,
    /// The renewal thread runs (one per process).
    renewer: bool,
}

impl Authorizer {
    pub fn new(
        http: AsHttp,
        mcp_url: url::Url,
        settings: Settings,
        store: Arc<dyn TokenStore>,
        stop: Arc<Stop>,
    ) -> Arc<Self> {
        let key = store_key(mcp_url.as_str(), &settings.client);
        let authorizer = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            http,
            mcp_url,
            settings,
            store,
            key,
            stop,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        if let Some(record) = authorizer.read_store() {
            if record.tokens.is_some() {
                log::debug!(
                    "OAuth: using the tokens kept in the {}",
                    authorizer.store.describe()
                );
            }
            authorizer.state().record = record;
            authorizer.start_renewer();
        }
        authorizer
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock_mutex(&self.state)
    }

    /// The store key of this server (also names its cross-process lock).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Authorization` value and, for a DPoP-bound token, the `DPoP` proof of the next
    /// request (`method` to `url`), renewing a token about to expire first.
    pub fn headers(&self, method: &str, url: &str) -> Option<(String, Option<String>)> {
        let authorization = self.header()?;
        let tokens = self.state().record.tokens.clone()?;
        let dpop = match self.http.dpop() {
            // A DPoP-bound token from the store (another process got it, with the TLS key).
            None if tokens.is_dpop() && self.settings.dpop != DpopMode::Off => {
                let algs = self
                    .state()
                    .record
                    .server
                    .as_ref()
                    .and_then(|s| s.dpop_signing_alg_values_supported.clone())
                    .unwrap_or_default();
                self.http
                    .enable_dpop(&algs, self.ephemeral_dpop_ok())
                    .ok()
                    .flatten()
            }
            dpop => dpop,
        };
        let proof = match (tokens.is_dpop(), dpop) {
            (true, Some(dpop)) => {
                match dpop.proof(Side::Resource, method, url, Some(&tokens.access_token)) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        log::warn!("cannot make the DPoP proof: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        Some((authorization, proof))
    }

    /// A 2026-07-28 request with the authorization extensions in use declared in its `_meta`
    /// (None: nothing to declare).
    pub fn declare_extensions(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let ids = super::extensions::in_use(&self.http.config().oauth, self.http.dpop().is_some());
        super::extensions::declare(frame, &ids)
    }

    /// Whether DPoP may bind tokens to a key only this process holds: asked for (`on`), or
    /// nothing is shared with other processes anyway.
    fn ephemeral_dpop_ok(&self) -> bool {
        self.settings.dpop == DpopMode::On
            || !self.store.persistent()
            || self.http.config().oauth.dpop_key == DpopKey::Process
    }

    /// A server's `DPoP-Nonce` (on any answer): used by the next proof to it.
    pub fn keep_resource_nonce(&self, nonce: &str) {
        if let Some(dpop) = self.http.dpop() {
            dpop.keep_nonce(Side::Resource, nonce);
        }
    }

    /// The `Authorization` value for the next request, renewing a token about to expire first,
    /// and replacing a machine grant's token obtained with a certificate the bridge no longer
    /// presents (RFC 8705 §3: the server would refuse it).
    pub fn header(&self) -> Option<String> {
        let presented = self.follow_rotation();
        let (needs_refresh, renewable) = {
            let st = self.state();
            let tokens = st.record.tokens.as_ref()?;
            // Not again after replacing this very token failed (or the server refused the grant):
            // the request then goes with it, and a refusal fails it in one line (no grant per
            // request).
            let failed = st.machine_refused.is_some()
                || st.refresh_failed.as_deref() == Some(tokens.access_token.as_str());
            let stale = tokens.certificate.is_some() && tokens.certificate != presented && !failed;
            if stale {
                log::info!(
                    "the TLS client certificate was renewed: getting a token for the new one before the next request"
                );
            }
            (
                tokens.needs_refresh(now()) || stale,
                tokens.refresh_token.is_some() || self.settings.machine.is_some(),
            )
        };
        if needs_refresh && renewable {
            let held = self.state().record.tokens.clone();
            self.refresh(held.as_ref());
        }
        self.state().record.tokens.as_ref().map(Tokens::header)
    }

    /// For a machine grant: reload a renewed TLS certificate now, before a token is chosen (the
    /// DPoP key follows when it is the TLS key), and return the thumbprint of the certificate
    /// requests present from now on. None for a sign-in, whose tokens are kept as they are.
    fn follow_rotation(&self) -> Option<String> {
        self.settings.machine.as_ref()?;
        self.http.follow_rotation();
        self.http.certificate_thumbprint()
    }

    /// A request was answered (not refused): the step-up count starts again.
    pub fn succeeded(&self) {
        let mut st = self.state();
        if st.authorizations != 0 {
            st.authorizations = 0;
        }
    }

    /// The server refused a request with `status` and these challenges; `sent` is the
    /// `Authorization` value the request carried, `retried` whether it was already sent again
    /// after an earlier challenge.
    pub fn on_challenge(
        self: &Arc<Self>,
        status: u16,
        challenges: &[Challenge],
        sent: Option<&str>,
        retried: bool,
    ) -> Verdict {
        let Some(found) = challenge::oauth(challenges) else {
            return Verdict::PassThrough;
        };
        if let Some(e) = &self.settings.config_error {
            return Verdict::Fail(e.clone());
        }
        if let Some(e) = &self.state().machine_refused {
            return Verdict::Fail(e.clone());
        }
        let error = found.param("error");
        if challenge::demands_dpop_nonce(challenges) && self.http.dpop().is_some() {
            // RFC 9449 §9: a nonce demanded, not a token refused (the nonce was kept already).
            log::debug!("OAuth: the server wants a DPoP nonce; sending again");
            return Verdict::Retry;
        }
        if status == 403 {
            if error != Some("insufficient_scope") {
                return Verdict::PassThrough;
            }
            log::info!(
                "the server needs more scope ({}): authorizing again",
                found.param("scope").unwrap_or("unspecified")
            );
            return self.authorize_and_wait(found, true);
        }
        if status != 401 {
            return Verdict::PassThrough;
        }
        let current = self.state().record.tokens.as_ref().map(Tokens::header);
        if current.is_some() && current.as_deref() != sent {
            // Another request (or process) got a new token meanwhile.
            return Verdict::Retry;
        }
        if retried && sent.is_some() {
            return Verdict::Fail(format!(
                "the server refused the access token just obtained from {} (HTTP 401{}); check that the server accepts tokens of that authorization server",
                self.issuer().unwrap_or_else(|| "the authorization server".into()),
                error.map(|e| format!(", {e}")).unwrap_or_default()
            ));
        }
        if let Some(sent) = sent {
            if !self.issuer_moved(found)
                && self.settings.machine.is_none()
                && self.refresh_refused(sent)
            {
                return Verdict::Retry;
            }
            self.forget_tokens();
        }
        self.authorize_and_wait(found, false)
    }

    fn issuer(&self) -> Option<String> {
        self.state().record.issuer().map(str::to_string)
    }

    /// After a held token was refused: does the server now name another authorization server?
    /// If so, forget the old one's tokens (its client stays stamped with its issuer and is never
    /// shown to the new one).
    fn issuer_moved(&self, found: &Challenge) -> bool {
        let Some(old) = self.issuer() else {
            return false;
        };
        match flow::discover(&self.http, &self.mcp_url, Some(found)) {
            Ok(discovered) if discovered.server.issuer != old => {
                log::info!(
                    "the server moved to the authorization server {} (from {old}); signing in there",
                    discovered.server.issuer
                );
                let mut st = self.state();
                st.record.tokens = None;
                st.discovered = Some(discovered);
                true
            }
            Ok(discovered) => {
                self.state().discovered = Some(discovered);
                false
            }
            Err(e) => {
                log::debug!("OAuth: discovery after a refused token failed: {e}");
                false
            }
        }
    }

    /// Refresh after the server refused `sent`; true when a new token is there.
    fn refresh_refused(&self, sent: &str) -> bool {
        let held = self.state().record.tokens.clone();
        match held {
            // Not again when renewing this very token failed just now (in `header`): a silent
            // token endpoint must not hold the request twice before the login.
            Some(t) if self.state().refresh_failed.as_ref() == Some(&t.access_token) => false,
            Some(t) if t.header() == sent && t.refresh_token.is_some() => self.refresh(Some(&t)),
            _ => false,
        }
    }

    /// Drop the access and refresh tokens (here and in the store).
    fn forget_tokens(&self) {
        let record = {
            let mut st = self.state();
            st.record.tokens = None;
            st.record.clone()
        };
        self.write_store(&record);
    }

    /// Start a login (or join the one running) and wait for it up to `--oauth-login-wait`.
    fn authorize_and_wait(self: &Arc<Self>, found: &Challenge, step_up: bool) -> Verdict {
        let deadline = Instant::now() + self.settings.login_wait;
        let mut st = self.state();
        let seen = st.logins_ended;
        if !st.login_running {
            if st.authorizations >= MAX_AUTHORIZATIONS {
                return Verdict::Fail(format!(
                    "the server still refuses the token after {MAX_AUTHORIZATIONS} authorizations (HTTP 403 insufficient_scope{}); the account may lack the scope",
                    found.param("scope").map(|s| format!(", scope \"{s}\"")).unwrap_or_default()
                ));
            }
            let now_instant = Instant::now();
            st.recent_logins
                .retain(|t| now_instant.duration_since(*t) < BRAKE_WINDOW);
            if st.recent_logins.len() >= BRAKE_LOGINS {
                return Verdict::Fail(format!(
                    "{BRAKE_LOGINS} logins in {} s did not give a token the server accepts; not starting another (check the server's and the authorization server's settings)",
                    BRAKE_WINDOW.as_secs()
                ));
            }
            st.recent_logins.push(now_instant);
            st.authorizations += 1;
            st.login_running = true;
            st.login_shown = false;
            let me = Arc::clone(self);
            let found = found.clone();
            let spawned = thread::Builder::new()
                .name("oauth-login".into())
                .spawn(move || me.run_login(&found, step_up));
            if let Err(e) = spawned {
                st.login_running = false;
                return Verdict::Fail(format!("cannot start the login: {e}"));
            }
        }
        loop {
            if st.logins_ended != seen {
                return match &st.last_login {
                    Some(Ok(())) => Verdict::Retry,
                    Some(Err(e)) => Verdict::Fail(format!("authorization failed: {e}")),
                    None => Verdict::Fail("authorization failed".into()),
                };
            }
            if self.stop.is_stopped() {
                return Verdict::Fail("the bridge is stopping".into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // True to where the login is: before its URL is shown, the authorization server
                // is what keeps it (a silent one is bounded by the answer timeout).
                return Verdict::Fail(if st.login_shown {
                    format!(
                        "the server {} needs a sign-in: finish it in the browser (the URL is on stderr), or run `mcp-secure-remote login {}`, then retry",
                        self.mcp_url, self.mcp_url
                    )
                } else {
                    format!(
                        "the server {} needs a sign-in, and its authorization server has not answered yet (the login goes on; see stderr): retry in a moment, or run `mcp-secure-remote login {}`",
                        self.mcp_url, self.mcp_url
                    )
                });
            }
            st = match self.changed.wait_timeout(st, left.min(POLL)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// The login thread: one login (or the tokens another process got meanwhile).
    fn run_login(&self, found: &Challenge, step_up: bool) {
        let outcome = self.login(found, step_up).map_err(|e| one_line(&e));
        if let Err(e) = &outcome {
            log::warn!("authorization failed: {e}");
        }
        let mut st = self.state();
        st.login_running = false;
        st.logins_ended += 1;
        st.last_login = Some(outcome);
        drop(st);
        self.changed.notify_all();
    }

    fn login(&self, found: &Challenge, step_up: bool) -> Result<(), String> {
        let refused = self.state().record.tokens.clone();
        let stopped = || self.stop.is_stopped();
        let _guard = if self.store.persistent() {
            let deadline = Instant::now() + LOGIN_BOUND;
            let mut adopt = || self.adopt_newer(refused.as_ref());
            match lock::lock_waiting(&self.key, deadline, &stopped, &mut adopt) {
                Ok(Some(guard)) => Some(guard),
                Ok(None) => return Ok(()), // another process finished the login
                Err(e) => {
                    log::warn!("{e}; logging in without coordinating with other bridges");
                    None
                }
            }
        } else {
            None
        };
        if self.adopt_newer(refused.as_ref()) && !step_up {
            return Ok(());
        }
        // Bound first: a guard in the `match` scrutinee would live to the end of the match, so
        // the state lock would be held through discovery and every request waiting for this login
        // (and the stop) would block on it for as long as the authorization server is silent.
        let kept = self.state().discovered.clone();
        let discovered = match kept {
            Some(d) if !step_up && found.param("resource_metadata").is_none() => d,
            _ => flow::discover(&self.http, &self.mcp_url, Some(found))?,
        };
        let (scope, kept_client) = {
            let st = self.state();
            let earlier = step_up
                .then(|| st.record.tokens.as_ref().and_then(|t| t.scope.clone()))
                .flatten();
            let scope = metadata::choose_scope(
                found.param("scope"),
                discovered.resource_scopes.as_deref(),
                earlier.as_deref(),
                &discovered.server,
            );
            (
                scope,
                st.record.client_for(&discovered.server.issuer).cloned(),
            )
        };
        if self.settings.dpop != DpopMode::Off && discovered.server.offers_dpop() {
            let algs = discovered
                .server
                .dpop_signing_alg_values_supported
                .clone()
                .unwrap_or_default();
            match self.http.enable_dpop(&algs, self.ephemeral_dpop_ok())? {
                Some(dpop) => log::debug!(
                    "OAuth: DPoP-bound tokens, proofs signed with {}",
                    if dpop.shared { "the TLS client key" } else { "a key of this process" }
                ),
                None => log::debug!(
                    "OAuth: bearer tokens: DPoP would bind them to a key of this process, and the {} shares them with other bridges (--oauth-dpop on to bind anyway)",
                    self.store.describe()
                ),
            }
        }
        if let Some(client) = &self.settings.machine {
            return self.machine_grant(client, &discovered, scope);
        }
        let server_name = self.mcp_url.to_string();
        let logged_in = flow::login(
            &self.http,
            LoginPlan {
                discovered: &discovered,
                client_config: &self.settings.client,
                kept_client: kept_client.as_ref(),
                redirect_uri: self.settings.redirect_uri.as_deref(),
                scope,
                opener: &self.settings.opener,
                server_name: &server_name,
                deadline: Instant::now() + LOGIN_BOUND,
                stopped: &stopped,
                shown: &|| self.state().login_shown = true,
            },
        )?;
        if let Some(warning) = &self.settings.store_warning {
            log::warn!("{warning}");
        }
        log::info!(
            "signed in at {} ({}); scope {}; {}",
            discovered.server.issuer,
            logged_in.client.source.describe(),
            logged_in.tokens.scope.as_deref().unwrap_or("(none asked)"),
            expiry_words(&logged_in.tokens)
        );
        let record = {
            let mut st = self.state();
            st.record.resource = discovered.resource.clone();
            st.record.server = Some(discovered.server.clone());
            st.record.put_client(logged_in.client);
            st.record.tokens = Some(logged_in.tokens);
            st.discovered = Some(discovered);
            st.record.clone()
        };
        self.write_store(&record);
        self.start_renewer();
        Ok(())
    }

    /// Run the machine grant and keep its tokens. An authorization server's refusal is final.
    fn machine_grant(
        &self,
        client: &MachineClient,
        discovered: &Discovered,
        scope: Option<String>,
    ) -> Result<(), String> {
        // A machine grant gets no refresh token: offline_access means nothing to it.
        let scope = scope.and_then(|s| {
            let kept: Vec<&str> = s
                .split_ascii_whitespace()
                .filter(|s| *s != "offline_access")
                .collect();
            (!kept.is_empty()).then(|| kept.join(" "))
        });
        // The identity is settled before the grant (a renewal is reloaded now, not while the
        // token request connects), so that the token is recorded with the certificate and DPoP
        // key it was obtained with.
        let presented = self.follow_rotation();
        match machine::obtain(&self.http, discovered, client, scope.as_deref()) {
            Ok(mut tokens) => {
                tokens.certificate = presented;
                log::info!(
                    "obtained a token from {} ({} grant); scope {}; {}",
                    discovered.server.issuer,
                    client.grant.name(),
                    tokens.scope.as_deref().unwrap_or("(none asked)"),
                    expiry_words(&tokens)
                );
                let record = {
                    let mut st = self.state();
                    st.record.resource = discovered.resource.clone();
                    st.record.server = Some(discovered.server.clone());
                    st.record.tokens = Some(tokens);
                    st.discovered = Some(discovered.clone());
                    st.record.clone()
                };
                self.write_store(&record);
                self.start_renewer();
                Ok(())
            }
            Err(failure) => {
                if failure.refused {
                    self.state().machine_refused = Some(failure.message.clone());
                }
                Err(failure.message)
            }
        }
    }

    /// Renew `held` with its refresh token (single-flight here, and across processes with a
    /// shared store). True when a new token is there.
    fn refresh(&self, held: Option<&Tokens>) -> bool {
        let Some(held) = held else {
            return false;
        };
        {
            let mut st = self.state();
            if st.refreshing {
                let deadline = Instant::now() + REFRESH_WAIT;
                while st.refreshing && Instant::now() < deadline && !self.stop.is_stopped() {
                    st = match self.changed.wait_timeout(st, POLL) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                return st.record.tokens.as_ref() != Some(held);
            }
            st.refreshing = true;
        }
        let renewed = self.refresh_now(held);
        {
            let mut st = self.state();
            st.refreshing = false;
            st.refresh_failed = (!renewed).then(|| held.access_token.clone());
        }
        self.changed.notify_all();
        renewed
    }

    fn refresh_now(&self, held: &Tokens) -> bool {
        let stopped = || self.stop.is_stopped();
        let _guard = if self.store.persistent() {
            let deadline = Instant::now() + REFRESH_WAIT;
            let mut adopt = || self.adopt_newer(Some(held));
            match lock::lock_waiting(&self.key, deadline, &stopped, &mut adopt) {
                Ok(Some(guard)) => Some(guard),
                Ok(None) => return true,
                Err(e) => {
                    log::warn!("{e}; refreshing without coordinating with other bridges");
                    None
                }
            }
        } else {
            None
        };
        // Under the lock: another process may have refreshed (and rotated the refresh token).
        if self.adopt_newer(Some(held)) {
            return true;
        }
        if let Some(client) = &self.settings.machine {
            let discovered = self.state().discovered.clone();
            let Some(discovered) = discovered else {
                return false;
            };
            let scope = held.scope.clone();
            return match self.machine_grant(client, &discovered, scope) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("renewing the token failed: {e}");
                    false
                }
            };
        }
        let (server, client, resource) = {
            let st = self.state();
            let Some(server) = st.record.server.clone() else {
                return false;
            };
            let Some(client) = st.record.client_for(&server.issuer).cloned() else {
                return false;
            };
            (server, client, st.record.resource.clone())
        };
        match flow::refresh(&self.http, &server, &client, held, resource.as_deref()) {
            Ok(tokens) => {
                log::info!(
                    "renewed the access token at {} ({})",
                    server.issuer,
                    expiry_words(&tokens)
                );
                let record = {
                    let mut st = self.state();
                    st.record.tokens = Some(tokens);
                    st.record.clone()
                };
                // Saved before the new token is used: a rotated refresh token must not be lost.
                self.write_store(&record);
                self.start_renewer();
                true
            }
            Err(failure) => {
                log::warn!("{}", failure.describe("renewing the access token"));
                if failure.grant_is_dead() {
                    let record = {
                        let mut st = self.state();
                        st.record.tokens = None;
                        if failure.client_is_dead() {
                            st.record.clients.retain(|c| c.issuer != server.issuer);
                        }
                        st.record.clone()
                    };
                    self.write_store(&record);
                }
                false
            }
        }
    }

    /// Take the store's tokens if they differ from `than` (another process renewed or logged
    /// in). True when something new was adopted.
    fn adopt_newer(&self, than: Option<&Tokens>) -> bool {
        if !self.store.persistent() {
            return false;
        }
        let Some(record) = self.read_store() else {
            return false;
        };
        match &record.tokens {
            Some(tokens) if Some(tokens) != than => {
                log::debug!("OAuth: adopting tokens another bridge process obtained");
                self.state().record = record;
                true
            }
            _ => false,
        }
    }

    fn read_store(&self) -> Option<Record> {
        match self.store.load(&self.key) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(record) => Some(record),
                Err(e) => {
                    log::warn!(
                        "the kept authorization in the {} is unreadable ({e}); ignoring it",
                        self.store.describe()
                    );
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                log::warn!("cannot read the {}: {e}", self.store.describe());
                None
            }
        }
    }

    /// Renew the tokens before they expire, on a thread of its own, so that no request waits
    /// for it (a machine grant is run again; a sign-in's refresh token is redeemed). Started once;
    /// it ends with the bridge or when there is nothing left to renew.
    fn start_renewer(&self) {
        let renewable = self.settings.machine.is_some()
            || self
                .state()
                .record
                .tokens
                .as_ref()
                .is_some_and(|t| t.refresh_token.is_some());
        if !renewable {
            return;
        }
        {
            let mut st = self.state();
            if st.renewer {
                return;
            }
            st.renewer = true;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let spawned = thread::Builder::new()
            .name("oauth-renew".into())
            .spawn(move || me.renew_ahead());
        if let Err(e) = spawned {
            log::debug!(
                "OAuth: no renewal thread ({e}); tokens are renewed when a request needs them"
            );
            self.state().renewer = false;
        }
    }

    fn renew_ahead(&self) {
        loop {
            let held = self.state().record.tokens.clone();
            let Some(held) = held.filter(|t| t.expires_at.is_some()) else {
                break;
            };
            if held.needs_refresh(now()) {
                if !self.refresh(Some(&held)) {
                    // Left to the next request (which reports what went wrong), not retried here.
                    break;
                }
                continue;
            }
            // Look again at a quarter of the time left (at most a minute, at least 200 ms): the
            // token may have been renewed meanwhile by a request or another process.
            let left = held.expires_at.unwrap_or(0).saturating_sub(now());
            let wait = Duration::from_secs(left / 4)
                .clamp(Duration::from_millis(200), Duration::from_secs(60));
            if !self.stop.sleep(wait) {
                break;
            }
        }
        self.state().renewer = false;
    }

    fn write_store(&self, record: &Record) {
        // Tokens bound to a key only this process holds are of no use to another one.
        let process_bound = record.tokens.as_ref().is_some_and(Tokens::is_dpop)
            && !self.http.dpop().is_some_and(|d| d.shared);
        let kept;
        let record = if process_bound {
            kept = Record {
                tokens: None,
                ..record.clone()
            };
            &kept
        } else {
            record
        };
        let bytes = match serde_json::to_vec(record) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("cannot serialise the authorization: {e}");
                return;
            }
        };
        if let Err(e) = self.store.save(&self.key, &bytes) {
            log::warn!(
                "cannot save the authorization in the {}: {e}",
                self.store.describe()
            );
        }
    }

    /// What the test client reports: never a token.
    pub fn status(&self) -> Option<Status> {
        let st = self.state();
        let server = st.record.server.as_ref()?;
        let client = st.record.client_for(&server.issuer);
        let tokens = st.record.tokens.as_ref();
        Some(Status {
            issuer: server.issuer.clone(),
            registration: client.map(|c| c.source.describe().to_string()),
            scope: tokens.and_then(|t| t.scope.clone()),
            expires_in: tokens.and_then(|t| t.seconds_left(now())),
            store: self.store.describe(),
        })
    }

    /// Log out: revoke what the server lets revoke, forget the record.
    pub fn logout(&self) -> bool {
        let record = self.state().record.clone();
        let had = record.tokens.is_some();
        if let (Some(server), Some(tokens)) = (&record.server, &record.tokens) {
            if let Some(client) = record.client_for(&server.issuer) {
                if let Some(refresh) = &tokens.refresh_token {
                    flow::revoke(&self.http, server, client, refresh, "refresh_token");
                }
                flow::revoke(
                    &self.http,
                    server,
                    client,
                    &tokens.access_token,
                    "access_token",
                );
            }
        }
        self.state().record = Record::default();
        if let Err(e) = self.store.delete(&self.key) {
            log::warn!(
                "cannot delete the authorization from the {}: {e}",
                self.store.describe()
            );
        }
        had
    }

    pub fn store_description(&self) -> String {
        self.store.describe()
    }

    /// Whether the store keeps tokens across restarts (and shares them with other processes).
    pub fn store_is_persistent(&self) -> bool {
        self.store.persistent()
    }
}

/// What is known of the authorization, for reports.
#[derive(Debug, Clone)]
pub struct Status {
    pub issuer: String,
    pub registration: Option<String>,
    pub scope: Option<String>,
    pub expires_in: Option<i64>,
    pub store: String,
}

/// "expires in 3600 s" or "no expiry given".
fn expiry_words(tokens: &Tokens) -> String {
    match tokens.seconds_left(now()) {
        Some(s) => format!("expires in {s} s"),
        None => "no expiry given".into(),
    }
}

/// The longest failure message a login reports (messages quote what an authorization server
/// sent, and a hostile one sends up to the answer bound).
const MESSAGE_CHARS: usize = 1000;

/// A login's failure as one bounded line: it quotes the authorization server (an issuer, a
/// token type), whose line breaks must not split the request's error or forge log lines.
fn one_line(message: &str) -> String {
    let mut line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_CHARS)
        .collect();
    if message.chars().nth(MESSAGE_CHARS).is_some() {
        line.push('…');
    }
    line
}

/// One record per MCP server and client configuration.
fn store_key(mcp_url: &str, client: &ClientConfig) -> String {
    let id = client
        .client_id
        .as_deref()
        .or(client.metadata_url.as_deref())
        .unwrap_or("");
    format!("mcp-secure-remote oauth {mcp_url} {id}")
        .trim_end()
        .to_string()
}
