//! Identities in the Windows certificate store (`CurrentUser\My`, `LocalMachine\My`): the
//! certificates that have a private key, their chains as Windows builds them, and a rustls
//! `SigningKey` that signs inside the key's CNG key storage provider (software, smart card, TPM).
//! The key is never exported: the handshake hash is signed inside CNG (`NCryptSignHash`, through
//! `rustls-cng`), and a provider that wants a PIN asks for it in its own Windows dialog.

use std::ffi::c_void;
use std::sync::Arc;
use std::{mem, ptr, slice};

use ring::digest;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_cng::cert::CertContext;
use rustls_cng::error::CngError;
use rustls_cng::key::{AlgorithmGroup, NCryptKey};
use rustls_cng::signer::CngSigningKey;
use rustls_pki_types::CertificateDer;
use windows_sys::Win32::Security::Cryptography::{
    CertCloseStore, CertDuplicateCertificateContext, CertEnumCertificatesInStore,
    CertFreeCertificateChain, CertFreeCertificateContext, CertGetCertificateChain,
    CertGetCertificateContextProperty, CertOpenStore, CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL,
    CERT_CHAIN_CONTEXT, CERT_CHAIN_DISABLE_AIA, CERT_CHAIN_DISABLE_AUTH_ROOT_AUTO_UPDATE,
    CERT_CHAIN_PARA, CERT_CONTEXT, CERT_KEY_PROV_INFO_PROP_ID, CERT_STORE_OPEN_EXISTING_FLAG,
    CERT_STORE_PROV_SYSTEM_W, CERT_STORE_READONLY_FLAG, CERT_SYSTEM_STORE_CURRENT_USER,
    CERT_SYSTEM_STORE_LOCAL_MACHINE, CERT_TRUST_IS_SELF_SIGNED, CRYPT_KEY_PROV_INFO,
    HCERTCHAINENGINE, HCERTSTORE,
};

use super::{Candidate, IdentitySource};
use crate::tls::TlsError;

/// The chain engine of the local machine (`HCCE_LOCAL_MACHINE`, not in windows-sys): a
/// `LocalMachine\My` certificate's intermediates live in the machine's `CA` store.
const HCCE_LOCAL_MACHINE: HCERTCHAINENGINE = 1 as HCERTCHAINENGINE;

/// Opens `CurrentUser\My` (`"user"`) or `LocalMachine\My` (`"machine"`), read-only.
pub(crate) fn open(store: &str) -> Result<Box<dyn IdentitySource>, TlsError> {
    let (flags, name, machine) = match store {
        "user" => (CERT_SYSTEM_STORE_CURRENT_USER, "CurrentUser\\My", false),
        "machine" => (CERT_SYSTEM_STORE_LOCAL_MACHINE, "LocalMachine\\My", true),
        other => {
            return Err(TlsError::Store {
                store: format!("windows:{other}"),
                detail: "unknown Windows store: use windows:user (CurrentUser\\My) or \
                         windows:machine (LocalMachine\\My)"
                    .to_string(),
            })
        }
    };
    let my: Vec<u16> = "My".encode_utf16().chain([0]).collect();
    // SAFETY: `my` is a NUL-terminated UTF-16 string that outlives the call.
    let handle = unsafe {
        CertOpenStore(
            CERT_STORE_PROV_SYSTEM_W,
            0,
            0,
            flags | CERT_STORE_OPEN_EXISTING_FLAG | CERT_STORE_READONLY_FLAG,
            my.as_ptr().cast(),
        )
    };
    if handle.is_null() {
        let code = std::io::Error::last_os_error();
        return Err(TlsError::Store {
            store: format!("Windows store {name}"),
            detail: format!("cannot be opened ({code}); check that it exists and is readable"),
        });
    }
    Ok(Box::new(WindowsStore::new(
        StoreHandle(handle),
        name,
        store,
        machine,
    )))
}

/// An open certificate store; closed on drop.
struct StoreHandle(HCERTSTORE);

// SAFETY: CryptoAPI store handles may be used from any thread (crypt32 locks the store itself).
unsafe impl Send for StoreHandle {}
unsafe impl Sync for StoreHandle {}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from CertOpenStore and is closed once.
        unsafe { CertCloseStore(self.0, 0) };
    }
}

/// One Windows system store.
struct WindowsStore {
    handle: StoreHandle,
    /// `CurrentUser\My`, for messages.
    name: &'static str,
    /// `user` or `machine`: the selector's location.
    location: String,
    /// Whether intermediates are looked up with the machine's chain engine.
    machine: bool,
}

impl WindowsStore {
    fn new(handle: StoreHandle, name: &'static str, location: &str, machine: bool) -> Self {
        Self {
            handle,
            name,
            location: location.to_string(),
            machine,
        }
    }

    fn error(&self, detail: String) -> TlsError {
        TlsError::Store {
            store: self.describe(),
            detail,
        }
    }

    /// Calls `each` with every certificate context of the store, in store order.
    fn for_each_cert(&self, mut each: impl FnMut(*const CERT_CONTEXT) -> bool) {
        let mut ctx: *const CERT_CONTEXT = ptr::null();
        loop {
            // SAFETY: the previous context is released by the call (and is null the first time).
            ctx = unsafe { CertEnumCertificatesInStore(self.handle.0, ctx) };
            if ctx.is_null() {
                return;
            }
            if !each(ctx) {
                // Stopping early: the enumeration still holds `ctx`, release it.
                // SAFETY: `ctx` came from the enumeration and is not used after this.
                unsafe { CertFreeCertificateContext(ctx) };
                return;
            }
        }
    }

    /// The leaf and the intermediates Windows finds for it (in this store, the user's or the
    /// machine's `CA` store), without the self-signed root; the leaf alone if no chain is built.
    /// Nothing is fetched (no AIA download, no root update, only cached URLs): the store is listed
    /// again while connections open, and that must not wait on the network.
    fn chain(&self, ctx: *const CERT_CONTEXT) -> Vec<CertificateDer<'static>> {
        let leaf = CertificateDer::from(cert_der(ctx).to_vec());
        let para = CERT_CHAIN_PARA {
            cbSize: mem::size_of::<CERT_CHAIN_PARA>() as u32,
            ..Default::default()
        };
        let engine = if self.machine {
            HCCE_LOCAL_MACHINE
        } else {
            ptr::null_mut()
        };
        let mut chain: *mut CERT_CHAIN_CONTEXT = ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the chain is freed below.
        let built = unsafe {
            CertGetCertificateChain(
                engine,
                ctx,
                ptr::null(),
                self.handle.0,
                &para,
                CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL
                    | CERT_CHAIN_DISABLE_AIA
                    | CERT_CHAIN_DISABLE_AUTH_ROOT_AUTO_UPDATE,
                ptr::null(),
                &mut chain,
            )
        } != 0;
        if !built || chain.is_null() {
            return vec![leaf];
        }
        let mut out = Vec::new();
        // SAFETY: a built chain context holds cChain simple chains of cElement elements each.
        unsafe {
            if (*chain).cChain > 0 {
                let simple = *(*chain).rgpChain;
                let elements =
                    slice::from_raw_parts((*simple).rgpElement, (*simple).cElement as usize);
                for (i, element) in elements.iter().enumerate() {
                    let element = &**element;
                    if i > 0 && element.TrustStatus.dwInfoStatus & CERT_TRUST_IS_SELF_SIGNED != 0 {
                        break;
                    }
                    out.push(CertificateDer::from(
                        cert_der(element.pCertContext).to_vec(),
                    ));
                }
            }
            CertFreeCertificateChain(chain);
        }
        if out.is_empty() {
            vec![leaf]
        } else {
            out
        }
    }
}

impl IdentitySource for WindowsStore {
    fn describe(&self) -> String {
        format!("Windows store {}", self.name)
    }

    fn candidates(&self) -> Result<Vec<Candidate>, TlsError> {
        let mut found = Vec::new();
        self.for_each_cert(|ctx| {
            if let Some(provider) = key_provider(ctx) {
                let der = cert_der(ctx);
                found.push(Candidate {
                    chain: self.chain(ctx),
                    selector: format!("windows:{};sha1={}", self.location, thumbprint(der)),
                    key_location: provider.describe(),
                });
            }
            true
        });
        Ok(found)
    }

    fn signing_key(&self, candidate: &Candidate) -> Result<Arc<dyn SigningKey>, TlsError> {
        let leaf = candidate
            .chain
            .first()
            .ok_or_else(|| self.error("an identity without a certificate".to_string()))?;
        let mut context = None;
        self.for_each_cert(|ctx| {
            if cert_der(ctx) == leaf.as_ref() {
                // SAFETY: a second reference to a live context, released by CertContext's drop.
                context = Some(CertContext::new_owned(unsafe {
                    CertDuplicateCertificateContext(ctx)
                }));
                return false;
            }
            true
        });
        let context = context.ok_or_else(|| {
            self.error(format!(
                "the certificate {} is no longer in the store; list the store again \
                 (mcp-secure-remote-client --list-identities)",
                thumbprint(leaf)
            ))
        })?;
        let provider = key_provider(context.inner()).map(|p| p.describe());
        // Not silent: a smart-card or TPM provider may show its own PIN dialog.
        let key = context
            .acquire_key(false)
            .map_err(|e| self.error(acquire_failure(&e, provider.as_deref(), leaf)))?;
        signing_key_of(key, &thumbprint(leaf)).map_err(|detail| self.error(detail))
    }
}

/// The rustls signing key of a CNG key: RSA (PKCS#1 v1.5 and PSS) and ECDSA P-256/P-384, hashed
/// here and signed by the key's provider. `thumb` names the certificate in signing errors.
pub(crate) fn signing_key_of(key: NCryptKey, thumb: &str) -> Result<Arc<dyn SigningKey>, String> {
    let signing = CngSigningKey::new(key).map_err(|e| {
        format!(
            "the key's algorithm cannot be read ({})",
            describe_error(&e)
        )
    })?;
    match (signing.algorithm_group(), signing.bits()) {
        (AlgorithmGroup::Rsa, bits) if bits >= 2048 => {}
        (AlgorithmGroup::Rsa, bits) => {
            return Err(format!(
                "its RSA key has {bits} bits; TLS servers want 2048 or more: enroll a new \
                 certificate"
            ))
        }
        (AlgorithmGroup::Ecdsa | AlgorithmGroup::Ecdh, 256 | 384) => {}
        (_, bits) => {
            return Err(format!(
                "its {bits}-bit elliptic-curve key cannot sign TLS handshakes here; use an RSA, \
                 ECDSA P-256 or P-384 key"
            ))
        }
    }
    Ok(Arc::new(StoreKey {
        inner: signing,
        thumb: thumb.to_string(),
    }))
}

/// rustls-cng's key, with its signing errors said in our words (a card pulled out mid-session, a
/// cancelled PIN prompt) instead of a bare error code.
#[derive(Debug)]
struct StoreKey {
    inner: CngSigningKey,
    thumb: String,
}

impl SigningKey for StoreKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let inner = self.inner.choose_scheme(offered)?;
        Some(Box::new(StoreSigner {
            inner,
            thumb: self.thumb.clone(),
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }
}

#[derive(Debug)]
struct StoreSigner {
    inner: Box<dyn Signer>,
    thumb: String,
}

impl Signer for StoreSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.inner.sign(message).map_err(|e| match &e {
            rustls::Error::Other(other) => match other.0.downcast_ref::<CngError>() {
                Some(cng) => rustls::Error::General(sign_failure(cng, &self.thumb)),
                None => e,
            },
            _ => e,
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.inner.scheme()
    }
}

/// Why CNG did not sign with the key of certificate `thumb`, and what to do.
fn sign_failure(error: &CngError, thumb: &str) -> String {
    match windows_code(error) {
        Some(SCARD_E_NO_SMARTCARD) | Some(SCARD_W_REMOVED_CARD) => format!(
            "the smart card holding the key of certificate {thumb} was removed; insert it again"
        ),
        Some(SCARD_W_CANCELLED_BY_USER) | Some(ERROR_CANCELLED) => {
            format!("the PIN prompt for the key of certificate {thumb} was cancelled")
        }
        Some(SCARD_W_WRONG_CHV) => {
            format!(
                "wrong PIN for the key of certificate {thumb}; try again (mind the retry count)"
            )
        }
        _ => format!(
            "Windows CNG did not sign with the key of certificate {thumb} ({})",
            describe_error(error)
        ),
    }
}

/// Where a store certificate's key lives, from its `CERT_KEY_PROV_INFO_PROP_ID` property (present
/// exactly when Windows shows "You have a private key that corresponds to this certificate").
struct KeyProvider {
    name: String,
    /// 0 for a CNG key storage provider, a CryptoAPI provider type otherwise.
    legacy_type: u32,
}

impl KeyProvider {
    fn describe(&self) -> String {
        if self.legacy_type == 0 {
            format!("Windows CNG: {}", self.name)
        } else {
            format!("Windows CryptoAPI: {}", self.name)
        }
    }
}

fn key_provider(ctx: *const CERT_CONTEXT) -> Option<KeyProvider> {
    let mut len = 0u32;
    // SAFETY: sizing call with a null buffer.
    let sized = unsafe {
        CertGetCertificateContextProperty(
            ctx,
            CERT_KEY_PROV_INFO_PROP_ID,
            ptr::null_mut(),
            &mut len,
        )
    } != 0;
    if !sized || (len as usize) < mem::size_of::<CRYPT_KEY_PROV_INFO>() {
        return None;
    }
    // u64 words: the buffer is aligned for the structure at its start.
    let mut buffer = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: the buffer holds `len` bytes; Windows fills the structure and the strings it points to.
    let read = unsafe {
        CertGetCertificateContextProperty(
            ctx,
            CERT_KEY_PROV_INFO_PROP_ID,
            buffer.as_mut_ptr().cast::<c_void>(),
            &mut len,
        )
    } != 0;
    if !read {
        return None;
    }
    // SAFETY: the property is a CRYPT_KEY_PROV_INFO whose string pointers point into `buffer`.
    let info = unsafe { &*buffer.as_ptr().cast::<CRYPT_KEY_PROV_INFO>() };
    let name = unsafe { wide_string(info.pwszProvName) };
    Some(KeyProvider {
        name: if name.is_empty() {
            "Microsoft Software Key Storage Provider".to_string()
        } else {
            name
        },
        legacy_type: info.dwProvType,
    })
}

/// A NUL-terminated UTF-16 string; empty for a null pointer.
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string.
unsafe fn wide_string(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    while *p.add(len) != 0 {
        len += 1;
    }
    String::from_utf16_lossy(slice::from_raw_parts(p, len))
}

fn cert_der<'a>(ctx: *const CERT_CONTEXT) -> &'a [u8] {
    // SAFETY: a live context's encoded certificate is cbCertEncoded bytes at pbCertEncoded, valid
    // for as long as the context; callers copy it before the context is released.
    unsafe { slice::from_raw_parts((*ctx).pbCertEncoded, (*ctx).cbCertEncoded as usize) }
}

/// The SHA-1 thumbprint as certmgr.msc and `certutil` show it, upper-case hex without spaces.
pub(crate) fn thumbprint(der: &[u8]) -> String {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Why the key of a store certificate could not be opened, and what to do about it.
fn acquire_failure(error: &CngError, provider: Option<&str>, leaf: &[u8]) -> String {
    let thumb = thumbprint(leaf);
    match windows_code(error) {
        Some(SCARD_E_NO_SMARTCARD) | Some(SCARD_W_REMOVED_CARD) => format!(
            "the key of certificate {thumb} is on a smart card that is not inserted; insert it"
        ),
        Some(SCARD_W_CANCELLED_BY_USER) | Some(ERROR_CANCELLED) => {
            format!("the PIN prompt for the key of certificate {thumb} was cancelled")
        }
        Some(SCARD_W_WRONG_CHV) => {
            format!(
                "wrong PIN for the key of certificate {thumb}; try again (mind the retry count)"
            )
        }
        Some(NTE_PERM) | Some(E_ACCESSDENIED) | Some(ERROR_ACCESS_DENIED) => format!(
            "this user may not use the private key of certificate {thumb}; run as the account \
             that enrolled it, or grant it Read (certlm.msc: the certificate, All Tasks, Manage \
             Private Keys)"
        ),
        Some(NTE_BAD_KEYSET) | Some(CRYPT_E_NO_KEY_PROPERTY) | Some(NTE_NO_KEY) => format!(
            "the private key of certificate {thumb} is missing ({} has none for it: the \
             certificate was imported without its key, or the key was deleted); import the \
             identity again",
            provider.unwrap_or("its key storage provider")
        ),
        _ if provider.is_some_and(|p| p.starts_with("Windows CryptoAPI")) => format!(
            "the key of certificate {thumb} is in a legacy CryptoAPI provider ({}), which CNG \
             cannot use; re-import it into a key storage provider (certutil -importPFX -csp \
             \"Microsoft Software Key Storage Provider\")",
            provider.unwrap_or_default()
        ),
        _ => format!(
            "the private key of certificate {thumb} cannot be opened ({})",
            describe_error(error)
        ),
    }
}

/// Win32 / HRESULT codes the messages above name (from winerror.h).
const NTE_BAD_KEYSET: u32 = 0x8009_0016;
const NTE_NO_KEY: u32 = 0x8009_000D;
const CRYPT_E_NO_KEY_PROPERTY: u32 = 0x8009_200B;
const SCARD_E_NO_SMARTCARD: u32 = 0x8010_000C;
const SCARD_W_REMOVED_CARD: u32 = 0x8010_0069;
const SCARD_W_WRONG_CHV: u32 = 0x8010_006B;
const SCARD_W_CANCELLED_BY_USER: u32 = 0x8010_006E;
const ERROR_CANCELLED: u32 = 0x8007_04C7;
const NTE_PERM: u32 = 0x8009_0010;
const E_ACCESSDENIED: u32 = 0x8007_0005;
/// What GetLastError gives for the same refusal.
const ERROR_ACCESS_DENIED: u32 = 5;

fn windows_code(error: &CngError) -> Option<u32> {
    match error {
        CngError::WindowsError(code) => Some(*code),
        _ => None,
    }
}

fn describe_error(error: &CngError) -> String {
    match windows_code(error) {
        Some(code) => format!(
            "Windows error 0x{code:08X}: {}",
            std::io::Error::from_raw_os_error(code as i32)
        ),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
