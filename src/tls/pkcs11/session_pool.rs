//! A logged-in token shared by every connection: a small pool of PKCS#11 sessions (a session is
//! one operation at a time; a handshake signs once), and the recovery when the token goes away.
//!
//! Losing the token (unplugged card, reset HSM) invalidates every session and handle. The pool
//! then forgets them; the next signature restarts the module, finds the token again, logs in and
//! finds the key, at most once per [`RETRY_INTERVAL`]; until that works each signature fails with
//! [`Pkcs11Error::TokenRemoved`], so every request gets an error and none hangs.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::error::{is_token_gone, Pkcs11Error};
use super::token::{self, PinSource};
use super::{module, Pkcs11Uri};

/// Sessions opened at most: enough for a burst of concurrent handshakes (each holds one for the
/// length of one signature), few enough for small tokens (a YubiKey allows 16).
pub const MAX_SESSIONS: usize = 8;
/// How long a handshake waits for a free session before failing.
pub const SESSION_WAIT: Duration = Duration::from_secs(30);
/// Attempts to find a removed token again are at most this often.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct TokenPool {
    ctx: Pkcs11,
    module_path: PathBuf,
    uri: Pkcs11Uri,
    pin: PinSource,
    /// The token's label when it was first found (messages keep naming it while it is gone).
    pub token_label: String,
    state: Mutex<State>,
    returned: Condvar,
}

impl std::fmt::Debug for TokenPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPool")
            .field("module", &self.module_path)
            .field("uri", &self.uri.to_string())
            .field("token", &self.token_label)
            .finish_non_exhaustive()
    }
}

struct State {
    /// `None` after the token was lost, until it is found again.
    live: Option<Live>,
    /// Sessions handed out and not yet returned.
    out: usize,
    /// Bumped at each (re)connection, so that a session from before a loss is never reused.
    epoch: u64,
    last_attempt: Option<Instant>,
}

struct Live {
    slot: Slot,
    key: ObjectHandle,
    idle: Vec<Session>,
    opened: usize,
}

/// A session lent by the pool; give it back with [`TokenPool::give_back`].
pub(crate) struct Lease {
    pub session: Session,
    pub key: ObjectHandle,
    pub slot: Slot,
    epoch: u64,
}

impl TokenPool {
    /// Loads the module, finds the token, logs in and finds the private key.
    pub fn open(module_path: PathBuf, uri: Pkcs11Uri, pin: PinSource) -> Result<Self, Pkcs11Error> {
        let ctx = module::get(&module_path)?;
        let (slot, token_label) = token::find_token(&ctx, &uri)?;
        let live = connect(&ctx, slot, &token_label, &uri, &pin)?;
        Ok(Self {
            ctx,
            module_path,
            uri,
            pin,
            token_label,
            state: Mutex::new(State {
                live: Some(live),
                out: 0,
                epoch: 1,
                last_attempt: None,
            }),
            returned: Condvar::new(),
        })
    }

    pub fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// Signs `data` with the key on the token.
    pub fn sign(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let lease = self.lease()?;
        let result = lease.session.sign(mechanism, lease.key, data);
        match result {
            Ok(signature) => {
                self.give_back(lease, false);
                Ok(signature)
            }
            Err(e) => {
                let gone = is_token_gone(&e);
                self.give_back(lease, gone);
                if gone {
                    log::warn!(
                        "PKCS#11 token '{}' went away while signing; new connections fail until \
                         it is back",
                        self.token_label
                    );
                }
                Err(self.error(e))
            }
        }
    }

    /// A session and the key handle, reconnecting to the token first if it was lost.
    pub fn lease(&self) -> Result<Lease, Pkcs11Error> {
        let deadline = Instant::now() + SESSION_WAIT;
        let mut state = self.lock();
        loop {
            if state.live.is_none() {
                self.reconnect(&mut state)?;
            }
            let epoch = state.epoch;
            let lost = {
                let Some(live) = state.live.as_mut() else {
                    continue;
                };
                if let Some(session) = live.idle.pop() {
                    let (key, slot) = (live.key, live.slot);
                    state.out += 1;
                    return Ok(Lease {
                        session,
                        key,
                        slot,
                        epoch,
                    });
                }
                if live.opened < MAX_SESSIONS {
                    match self.ctx.open_ro_session(live.slot) {
                        Ok(session) => {
                            live.opened += 1;
                            let (key, slot) = (live.key, live.slot);
                            state.out += 1;
                            return Ok(Lease {
                                session,
                                key,
                                slot,
                                epoch,
                            });
                        }
                        // The token's own limit: wait for one of ours to come back.
                        Err(CkError::Pkcs11(RvError::SessionCount, _)) => {
                            live.opened = MAX_SESSIONS;
                            None
                        }
                        Err(e) if is_token_gone(&e) => Some(e),
                        Err(e) => return Err(self.error(e)),
                    }
                } else {
                    None
                }
            };
            if let Some(e) = lost {
                forget(&mut state);
                return Err(self.error(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Pkcs11Error::Call {
                    function: "C_OpenSession".to_string(),
                    token: self.token_label.clone(),
                    code: format!(
                        "all {MAX_SESSIONS} sessions stayed busy for {} s",
                        SESSION_WAIT.as_secs()
                    ),
                });
            }
            state = match self.returned.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Returns a lent session; `lost`: the call failed because the token is gone.
    pub fn give_back(&self, lease: Lease, lost: bool) {
        let mut state = self.lock();
        state.out = state.out.saturating_sub(1);
        if lost && lease.epoch == state.epoch {
            forget(&mut state);
        }
        let current = state.epoch;
        match state.live.as_mut() {
            Some(live) if lease.epoch == current => live.idle.push(lease.session),
            // From before a loss: its handle means nothing now. Closed here, before any restart
            // (which waits for every lent session), so it cannot close a new session's handle.
            _ => {
                let _ = lease.session.close();
            }
        }
        drop(state);
        self.returned.notify_all();
    }

    /// Finds the token again after a loss (module restart, login, key lookup).
    fn reconnect(&self, state: &mut MutexGuard<'_, State>) -> Result<(), Pkcs11Error> {
        let removed = || Pkcs11Error::TokenRemoved {
            token: self.token_label.clone(),
        };
        // Sessions from before the loss are still out: the module cannot restart under them.
        if state.out > 0 {
            return Err(removed());
        }
        if state
            .last_attempt
            .is_some_and(|at| at.elapsed() < RETRY_INTERVAL)
        {
            return Err(removed());
        }
        state.last_attempt = Some(Instant::now());
        module::restart(&self.ctx, &self.module_path)?;
        let (slot, label) = token::find_token(&self.ctx, &self.uri).map_err(|e| match e {
            Pkcs11Error::NoToken { .. } => removed(),
            other => other,
        })?;
        let live = connect(&self.ctx, slot, &label, &self.uri, &self.pin)?;
        state.live = Some(live);
        state.epoch += 1;
        log::info!("PKCS#11 token '{label}' is back: signing with it again");
        Ok(())
    }

    fn error(&self, e: CkError) -> Pkcs11Error {
        token::call(e, &self.token_label)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drops the sessions of a lost token (they are invalid; closing them may fail, which is fine).
fn forget(state: &mut State) {
    if let Some(live) = state.live.take() {
        for session in live.idle {
            let _ = session.close();
        }
    }
}

/// Opens the first session, logs in and finds the private key the URI names.
fn connect(
    ctx: &Pkcs11,
    slot: Slot,
    token_label: &str,
    uri: &Pkcs11Uri,
    pin: &PinSource,
) -> Result<Live, Pkcs11Error> {
    let session = ctx
        .open_ro_session(slot)
        .map_err(|e| token::call(e, token_label))?;
    token::login(ctx, slot, &session, token_label, pin)?;
    let key = token::find_one(
        &session,
        ObjectClass::PRIVATE_KEY,
        uri.object.as_deref(),
        uri.id.as_deref(),
        "private key",
        token_label,
        uri,
    )?;
    Ok(Live {
        slot,
        key,
        idle: vec![session],
        opened: 1,
    })
}
