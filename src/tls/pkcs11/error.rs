//! `Pkcs11Error`: what can go wrong with a token, each variant worded so that its one-line Display
//! says which module, token or object is involved and what to do. No PKCS#11 return code reaches a
//! user as a debug dump: [`rv_name`] gives its `CKR_` name.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[cfg(feature = "pkcs11")]
use cryptoki::error::{Error as CkError, RvError};

const PIN_HINT: &str =
    "set --tls-passphrase or MCP_REMOTE_TLS_PASSPHRASE, or pin-source=FILE in the URI";

#[derive(Debug)]
pub enum Pkcs11Error {
    /// Neither `--tls-pkcs11-module` nor the URI's `module-path` names a module.
    NoModule {
        uri: String,
    },
    /// A static musl binary has no dynamic loader, so it cannot load any module.
    StaticBuild,
    /// Built without the `pkcs11` cargo feature (the static release is).
    NotBuilt,
    /// The module file does not exist or cannot be read.
    ModuleNotFound {
        path: PathBuf,
        source: io::Error,
    },
    /// The file exists but is not a loadable PKCS#11 module.
    NotAModule {
        path: PathBuf,
        detail: String,
    },
    /// `C_Initialize` failed.
    InitFailed {
        path: PathBuf,
        detail: String,
    },
    /// No slot holds a token that matches the URI; `tokens` lists the labels of those present.
    NoToken {
        uri: String,
        tokens: Vec<String>,
    },
    /// More than one token matches.
    SeveralTokens {
        uri: String,
        tokens: Vec<String>,
    },
    /// No object of the kind `what` matches on the token.
    NoObject {
        what: &'static str,
        object: String,
        token: String,
        uri: String,
    },
    /// Several objects of the kind `what` match.
    SeveralObjects {
        what: &'static str,
        count: usize,
        token: String,
        uri: String,
    },
    /// The token wants a login and no PIN was given.
    PinRequired {
        token: String,
    },
    /// `pin-source` could not be read.
    PinSource {
        path: PathBuf,
        source: io::Error,
    },
    WrongPin {
        token: String,
    },
    PinLocked {
        token: String,
    },
    /// The key exists but cannot make the signatures TLS needs.
    CannotSign {
        object: String,
        token: String,
        detail: String,
    },
    /// The token key is not the private half of the certificate.
    KeyMismatch {
        object: String,
        token: String,
        cert: String,
    },
    /// The token is gone (removed, unplugged, reset) while the bridge runs.
    TokenRemoved {
        token: String,
    },
    /// Any other failed call: `function` is the PKCS#11 function, `code` its `CKR_` name.
    Call {
        function: String,
        token: String,
        code: String,
    },
}

impl fmt::Display for Pkcs11Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoModule { uri } => write!(
                f,
                "no PKCS#11 module for {uri}: give the vendor's module with --tls-pkcs11-module PATH \
                 (or MCP_REMOTE_TLS_PKCS11_MODULE, or module-path=PATH in the URI), e.g. \
                 /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
            ),
            Self::StaticBuild => write!(
                f,
                "this mcp-secure-remote is a static build, which cannot load a PKCS#11 module (no \
                 dynamic loader); use the dynamically linked build (cargo install, or the \
                 x86_64-unknown-linux-gnu release) for keys on a token"
            ),
            Self::NotBuilt => write!(
                f,
                "this mcp-secure-remote was built without PKCS#11 support (the static release \
                 cannot load a module: it has no dynamic loader); use the dynamically linked \
                 build (cargo install, or the x86_64-unknown-linux-gnu release) for keys on a token"
            ),
            Self::ModuleNotFound { path, source } => write!(
                f,
                "cannot read the PKCS#11 module {}: {source} (check --tls-pkcs11-module or \
                 module-path; the vendor package installs it, e.g. opensc, ykcs11, softhsm2, \
                 tpm2-pkcs11)",
                path.display()
            ),
            Self::NotAModule { path, detail } => write!(
                f,
                "{} is not a PKCS#11 module ({detail}); give the vendor's PKCS#11 library \
                 (e.g. opensc-pkcs11.so, libykcs11.so, libsofthsm2.so, libtpm2_pkcs11.so)",
                path.display()
            ),
            Self::InitFailed { path, detail } => write!(
                f,
                "the PKCS#11 module {} failed to start ({detail}); check its configuration \
                 (e.g. SOFTHSM2_CONF for SoftHSM) and that its daemon (pcscd) runs",
                path.display()
            ),
            Self::NoToken { uri, tokens } if tokens.is_empty() => write!(
                f,
                "no PKCS#11 token matches {uri}: the module sees no token at all; insert the \
                 smart card or key (or initialise the token)"
            ),
            Self::NoToken { uri, tokens } => write!(
                f,
                "no PKCS#11 token matches {uri}; tokens present: {} (fix token= in the URI)",
                quoted_list(tokens)
            ),
            Self::SeveralTokens { uri, tokens } => write!(
                f,
                "{uri} matches several PKCS#11 tokens ({}); add token= or serial= to the URI",
                quoted_list(tokens)
            ),
            Self::NoObject {
                what,
                object,
                token,
                uri,
            } => write!(
                f,
                "no {what} matching {object} on PKCS#11 token '{token}' ({uri}); list the token's \
                 objects with 'pkcs11-tool --module MODULE --list-objects --login' and fix \
                 object= or id="
            ),
            Self::SeveralObjects {
                what,
                count,
                token,
                uri,
            } => write!(
                f,
                "{uri} matches {count} {what}s on PKCS#11 token '{token}'; add object= or id= to \
                 the URI to name one"
            ),
            Self::PinRequired { token } => write!(
                f,
                "PKCS#11 token '{token}' needs its user PIN to use the key ({PIN_HINT})"
            ),
            Self::PinSource { path, source } => write!(
                f,
                "cannot read the PIN file {} named by pin-source in the URI: {source} (check the \
                 path and its permissions)",
                path.display()
            ),
            Self::WrongPin { token } => write!(
                f,
                "wrong PIN for PKCS#11 token '{token}' ({PIN_HINT}); a few more wrong tries lock \
                 the token"
            ),
            Self::PinLocked { token } => write!(
                f,
                "the user PIN of PKCS#11 token '{token}' is locked after too many wrong tries; \
                 unlock it with the PUK or SO PIN (e.g. 'pkcs11-tool --unlock-pin' or \
                 'ykman piv access unblock-pin')"
            ),
            Self::CannotSign {
                object,
                token,
                detail,
            } => write!(
                f,
                "the key {object} on PKCS#11 token '{token}' cannot sign for TLS ({detail}); use \
                 an RSA (2048 bits or more) or ECDSA P-256/P-384 key whose CKA_SIGN is true"
            ),
            Self::KeyMismatch {
                object,
                token,
                cert,
            } => write!(
                f,
                "the key {object} on PKCS#11 token '{token}' does not match the certificate in \
                 {cert}; name the key that belongs to this certificate (same id= as the \
                 certificate object)"
            ),
            Self::TokenRemoved { token } => write!(
                f,
                "PKCS#11 token '{token}' is not present (removed or reset?): insert it again; \
                 the next connection will use it"
            ),
            Self::Call {
                function,
                token,
                code,
            } => write!(
                f,
                "PKCS#11 {function} failed on token '{token}' ({code}); check the token with \
                 'pkcs11-tool --module MODULE --list-token-slots'"
            ),
        }
    }
}

impl std::error::Error for Pkcs11Error {}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(feature = "pkcs11")]
/// Whether the error means the token (or the module's view of it) is gone, so that the next use
/// must start the module again rather than reuse sessions and handles.
pub fn is_token_gone(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionClosed
                | RvError::SessionHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::DeviceError
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
                | RvError::SlotIdInvalid,
            _
        )
    )
}

#[cfg(feature = "pkcs11")]
/// The function and `CKR_` name of a cryptoki error, e.g. `("C_Sign", "CKR_DEVICE_ERROR")`.
pub fn describe(e: &CkError) -> (String, String) {
    match e {
        CkError::Pkcs11(rv, function) => (format!("C_{function:?}"), rv_name(*rv)),
        other => ("call".to_string(), other.to_string()),
    }
}

#[cfg(feature = "pkcs11")]
/// The `CKR_…` name of a return value: `PinIncorrect` → `CKR_PIN_INCORRECT`.
pub fn rv_name(rv: RvError) -> String {
    // RvError's variant names are the CKR_ names in CamelCase; its Display is a paragraph.
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(all(test, feature = "pkcs11"))]
mod tests {
    use super::*;

    #[test]
    fn return_codes_read_like_the_spec() {
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(rv_name(RvError::DeviceRemoved), "CKR_DEVICE_REMOVED");
    }
}
