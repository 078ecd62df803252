//! Certificate rotation: short-lived client certificates (step-ca, SPIFFE, cert-manager) are
//! renewed on disk while the bridge runs. Before opening a new connection, the connector asks
//! [`Rotation::refresh`], which looks at the files' modification stamps at most once per
//! [`CHECK_INTERVAL`] and rebuilds the TLS configuration when one changed. A renewed file that
//! fails to load keeps the old configuration (with a warning); existing connections finish as
//! they are.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::connector::ConfigSlot;
use crate::config::TlsOptions;
use crate::tls;

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
        Arc::new(Self {
            opts,
            slot,
            state: Mutex::new(Watch {
                checked: Instant::now(),
                stamps,
            }),
        })
    }

    /// Reload the TLS configuration if a watched file changed (cheap when nothing did).
    pub fn refresh(&self) {
        let mut watch = match self.state.try_lock() {
            Ok(w) => w,
            // Another connection is checking right now: its result will do.
            Err(_) => return,
        };
        if watch.checked.elapsed() < CHECK_INTERVAL {
            return;
        }
        watch.checked = Instant::now();
        let current: Vec<(PathBuf, Stamp)> = watch
            .stamps
            .iter()
            .map(|(p, _)| (p.clone(), stamp(p)))
            .collect();
        if current == watch.stamps {
            return;
        }
        watch.stamps = current;
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
