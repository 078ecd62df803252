//! Loading the vendor's PKCS#11 module (a shared library, `dlopen()`ed at run time) and starting it.
//!
//! A module is loaded once per process and kept: PKCS#11 allows one `C_Initialize` per process, and
//! unloading a module that started threads of its own (pcscd clients, TPM resource managers) is
//! unsafe. Restarting it after a token was removed is `C_Finalize` + `C_Initialize` on the same
//! library ([`restart`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::error::{describe, Pkcs11Error};

/// Modules loaded so far, by the path they were given as.
static LOADED: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// The started module at `path`, loading and initialising it the first time.
pub(super) fn get(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ctx)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(ctx.clone());
    }
    let ctx = open(path)?;
    initialize(&ctx, path)?;
    loaded.push((path.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// `C_Finalize` then `C_Initialize`: the module forgets every session and handle and looks at its
/// slots again (SoftHSM, for one, reads its token directory only when it starts).
pub(super) fn restart(ctx: &Pkcs11, path: &Path) -> Result<(), Pkcs11Error> {
    // An error here means the module was not running; starting it is what matters.
    let _ = ctx.clone().finalize();
    initialize(ctx, path)
}

fn open(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    if cfg!(all(target_env = "musl", target_feature = "crt-static")) {
        // musl's static dlopen() is a stub that always fails: say why instead of its message.
        return Err(Pkcs11Error::StaticBuild);
    }
    match std::fs::metadata(path) {
        Err(source) => {
            return Err(Pkcs11Error::ModuleNotFound {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(meta) if meta.is_dir() => {
            return Err(Pkcs11Error::NotAModule {
                path: path.to_path_buf(),
                detail: "it is a directory".to_string(),
            })
        }
        Ok(_) => {}
    }
    Pkcs11::new(path).map_err(|e| Pkcs11Error::NotAModule {
        path: path.to_path_buf(),
        detail: match e {
            // dlopen's own message already names the file: keep only its reason.
            CkError::LibraryLoading(e) => {
                let text = e.to_string();
                let shown = path.display().to_string();
                text.rsplit_once(&format!("{shown}: "))
                    .map(|(_, reason)| reason.to_string())
                    .unwrap_or(text)
            }
            CkError::MissingSymbol(symbol) => format!("it exports no {symbol}"),
            other => describe(&other).1,
        },
    })
}

fn initialize(ctx: &Pkcs11, path: &Path) -> Result<(), Pkcs11Error> {
    // OS locking: the module must be safe to call from the worker threads that open connections.
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(Pkcs11Error::InitFailed {
            path: path.to_path_buf(),
            detail: describe(&e).1,
        }),
    }
}
