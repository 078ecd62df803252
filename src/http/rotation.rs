//! Certificate rotation: short-lived client certificates (step-ca, SPIFFE, cert-manager) are
//! renewed on disk while the bridge runs. Before opening a new connection, the connector asks
//! [`Rotation::refresh`], which looks at the files' modification stamps at most once per
//! [`CHECK_INTERVAL`] and rebuilds the TLS configuration when one changed. A renewed file that
//! fails to load keeps the old configuration (with a warning); requests under way finish on their
//! connections, and idle pooled connections that present the old identity are not reused. The
//! OAuth authorizer also asks ([`crate::http::Http::follow_rotation`]) before it chooses a
//! request's token, so that a token bound to the old certificate is replaced before it is sent.
//! A `--tls-cert` selector has no files: what its source holds is listed instead, at the same
//! pace, and a renewed, added or removed certificate reloads it the same way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::ClientConfig;

use crate::config::TlsOptions;
use crate::tls;

/// The current rustls configuration; replaced as a whole when certificates rotate. The connector
/// reads it for each new connection.
pub type ConfigSlot = Arc<RwLock<Arc<ClientConfig>>>;

/// How often the files are looked at, at most.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of a file.
type Stamp = Option<(SystemTime, u64)>;

pub struct Rotation {
    opts: TlsOptions,
    slot: ConfigSlot,
    state: Mutex<Watch>,
}

struct Watch {
    checked: Instant,
    stamps: Vec<(PathBuf, Stamp)>,
    /// A fingerprint of what a selector's source holds (`None`: no selector).
    store: Option<Vec<u8>>,
}

impl Rotation {
    /// Watch the files behind `opts` and keep `slot` up to date with them.
    pub fn new(opts: TlsOptions, slot: ConfigSlot) -> Arc<Self> {
        let stamps = watched_files(&opts)
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect();
        let store = tls::store_stamp(&opts);
        Arc::new(Self {
            opts,
            slot,
            state: Mutex::new(Watch {
                checked: Instant::now(),
                stamps,
                store,
            }),
        })
    }

    /// Reload the TLS configuration if a watched file changed (cheap when nothing did).
    ///
    /// Connections that arrive while another one checks or reloads wait for it (the lock is held
    /// throughout) and then use its result: going ahead would send the old identity, which a
    /// server that already moved to the new CA refuses.
    pub fn refresh(&self) {
        let mut watch = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if watch.checked.elapsed() < CHECK_INTERVAL {
            return;
        }
        watch.checked = Instant::now();
        let current: Vec<(PathBuf, Stamp)> = watch
            .stamps
            .iter()
            .map(|(p, _)| (p.clone(), stamp(p)))
            .collect();
        let store = watch
            .store
            .as_ref()
            .and_then(|_| tls::store_stamp(&self.opts));
        if current == watch.stamps && store == watch.store {
            return;
        }
        watch.stamps = current;
        watch.store = store;
        match tls::client_config(&self.opts) {
            Ok(new) => {
                if let Ok(mut slot) = self.slot.write() {
                    *slot = new.config;
                }
                match new.identity {
                    Some(id) => log::info!("TLS files changed on disk: new connections use {id}"),
                    None => log::info!("TLS files changed on disk: reloaded"),
                }
            }
            Err(e) => log::warn!(
                "TLS files changed on disk but cannot be loaded ({e}); keeping the previous ones"
            ),
        }
    }
}

/// The identity's files (a token key has none of its own; its certificate file counts) and the CA.
fn watched_files(opts: &TlsOptions) -> Vec<PathBuf> {
    let mut files = opts
        .identity
        .as_ref()
        .map(|identity| identity.files())
        .unwrap_or_default();
    files.extend(opts.ca.clone());
    files
}

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::RwLock;
    use std::thread;

    use super::*;

    fn server_trust_only() -> TlsOptions {
        TlsOptions {
            ca: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ca.crt")),
            ..TlsOptions::default()
        }
    }

    /// The race seen under emulation: a connection opened while another one reloads the renewed
    /// files must not go ahead with the identity from before the reload.
    #[test]
    fn a_connection_opened_during_a_reload_waits_for_the_new_configuration() {
        let opts = server_trust_only();
        let before = tls::client_config(&opts).unwrap().config;
        let slot: ConfigSlot = Arc::new(RwLock::new(before));
        let rotation = Rotation::new(opts.clone(), Arc::clone(&slot));

        // Another connection is in the middle of a reload: it holds the watch.
        let reloading = rotation.state.lock().unwrap();
        let waiter = {
            let (rotation, slot) = (Arc::clone(&rotation), Arc::clone(&slot));
            thread::spawn(move || {
                rotation.refresh();
                Arc::clone(&*slot.read().unwrap())
            })
        };
        thread::sleep(Duration::from_millis(200));
        let reloaded = tls::client_config(&opts).unwrap().config;
        *slot.write().unwrap() = Arc::clone(&reloaded);
        drop(reloading);

        let used = waiter.join().unwrap();
        assert!(
            Arc::ptr_eq(&used, &reloaded),
            "the connection went ahead with the configuration from before the reload"
        );
    }
}
