//! Windows Credential Manager: generic credentials named `mcp-secure-remote:KEY`, persisted for
//! this user on this machine (not roamed: tokens belong to the machine that signed in).
//!
//! One credential holds 2,560 bytes, so a larger value is split over `KEY`, `KEY:part2`, … (see
//! `chunks.rs`). A save writes the later parts first and the first part last, whose header names
//! how many there are; the per-server lock keeps two saves of one key from interleaving.

use super::chunks;
use super::{StoreError, TokenStore, SERVICE};
use std::io;
use windows_sys::Win32::Foundation::ERROR_NOT_FOUND;
use windows_sys::Win32::Security::Credentials::{
    CredDeleteW, CredFree, CredReadW, CredWriteW, CREDENTIALW, CRED_PERSIST_LOCAL_MACHINE,
    CRED_TYPE_GENERIC,
};

const DESCRIBE: &str = "Windows Credential Manager";

pub struct CredentialStore;

/// The credential name of part `index` (0-based) of `key`, NUL-terminated UTF-16.
fn target(key: &str, index: usize) -> Vec<u16> {
    let name = match index {
        0 => format!("{SERVICE}:{key}"),
        _ => format!("{SERVICE}:{key}:part{}", index + 1),
    };
    wide(&name)
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(Some(0)).collect()
}

fn not_found(error: &io::Error) -> bool {
    error.raw_os_error() == Some(ERROR_NOT_FOUND as i32)
}

fn read_one(target: &[u16]) -> io::Result<Option<Vec<u8>>> {
    let mut credential: *mut CREDENTIALW = std::ptr::null_mut();
    // SAFETY: `target` is NUL-terminated; on success the API hands us one allocation that we copy
    // out of and release with CredFree.
    let ok = unsafe { CredReadW(target.as_ptr(), CRED_TYPE_GENERIC, 0, &mut credential) };
    if ok == 0 {
        let error = io::Error::last_os_error();
        return if not_found(&error) {
            Ok(None)
        } else {
            Err(error)
        };
    }
    // SAFETY: CredReadW succeeded, so `credential` points to a valid CREDENTIALW whose blob
    // pointer and size describe one buffer (or a null pointer with size 0).
    let blob = unsafe {
        let found = &*credential;
        let blob = if found.CredentialBlob.is_null() || found.CredentialBlobSize == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(found.CredentialBlob, found.CredentialBlobSize as usize)
                .to_vec()
        };
        CredFree(credential as *const _);
        blob
    };
    Ok(Some(blob))
}

fn write_one(target: &[u16], blob: &[u8]) -> io::Result<()> {
    let mut target = target.to_vec();
    let mut user = wide(SERVICE);
    let mut blob = blob.to_vec();
    let credential = CREDENTIALW {
        Type: CRED_TYPE_GENERIC,
        TargetName: target.as_mut_ptr(),
        CredentialBlobSize: blob.len() as u32,
        CredentialBlob: blob.as_mut_ptr(),
        Persist: CRED_PERSIST_LOCAL_MACHINE,
        UserName: user.as_mut_ptr(),
        ..Default::default()
    };
    // SAFETY: every pointer in `credential` points into a buffer that lives until after the call.
    let ok = unsafe { CredWriteW(&credential, 0) };
    zeroize::Zeroize::zeroize(&mut blob);
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn delete_one(target: &[u16]) -> io::Result<()> {
    // SAFETY: `target` is NUL-terminated.
    let ok = unsafe { CredDeleteW(target.as_ptr(), CRED_TYPE_GENERIC, 0) };
    if ok == 0 {
        let error = io::Error::last_os_error();
        if !not_found(&error) {
            return Err(error);
        }
    }
    Ok(())
}

/// How many parts the stored value of `key` has (0: none stored).
fn stored_parts(key: &str) -> io::Result<usize> {
    Ok(read_one(&target(key, 0))?
        .map(|first| chunks::count(&first).unwrap_or(1))
        .unwrap_or(0))
}

impl TokenStore for CredentialStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let error = |detail: io::Error| StoreError::new("read", DESCRIBE, detail);
        let Some(first) = read_one(&target(key, 0)).map_err(error)? else {
            return Ok(None);
        };
        let count = chunks::count(&first).unwrap_or(0);
        let mut parts = vec![first];
        for index in 1..count {
            match read_one(&target(key, index)).map_err(error)? {
                Some(part) => parts.push(part),
                None => break,
            }
        }
        match chunks::join(&parts) {
            Some(value) => Ok(Some(value)),
            None => Err(StoreError::new(
                "read",
                DESCRIBE,
                format_args!("the entry {SERVICE}:{key} is incomplete or damaged: sign in again"),
            )),
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let error = |detail: io::Error| StoreError::new("save", DESCRIBE, detail);
        let Some(parts) = chunks::split(value) else {
            return Err(StoreError::new(
                "save",
                DESCRIBE,
                format_args!(
                    "{} bytes is more than the bridge splits over credentials ({}): choose \
                     --oauth-token-store file:PATH",
                    value.len(),
                    chunks::MAX_VALUE
                ),
            ));
        };
        let before = stored_parts(key).map_err(error)?;
        for (index, part) in parts.iter().enumerate().skip(1) {
            write_one(&target(key, index), part).map_err(error)?;
        }
        write_one(&target(key, 0), &parts[0]).map_err(error)?;
        for index in parts.len()..before {
            delete_one(&target(key, index)).map_err(error)?;
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let error = |detail: io::Error| StoreError::new("delete", DESCRIBE, detail);
        let parts = stored_parts(key).map_err(error)?;
        // The first part last: until it goes, a reader finds the value whole or not at all.
        for index in (0..parts.max(1)).rev() {
            delete_one(&target(key, index)).map_err(error)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        DESCRIBE.to_owned()
    }

    fn persistent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real round trip through Credential Manager (under wine in `make test-cross`), with a value
    /// that needs three credentials, then one that needs one (the extra parts must go).
    #[test]
    fn round_trip_split_over_several_credentials() {
        let store = CredentialStore;
        let key = format!("unit-test-{}", std::process::id());
        let large: Vec<u8> = (0..6000u32).map(|i| (i % 249) as u8).collect();
        assert_eq!(store.load(&key), Ok(None));
        assert_eq!(store.save(&key, &large), Ok(()));
        assert_eq!(store.load(&key), Ok(Some(large)));
        assert_eq!(store.save(&key, b"small"), Ok(()));
        assert_eq!(store.load(&key), Ok(Some(b"small".to_vec())));
        assert_eq!(read_one(&target(&key, 1)).ok(), Some(None));
        assert_eq!(store.delete(&key), Ok(()));
        assert_eq!(store.load(&key), Ok(None));
    }
}
