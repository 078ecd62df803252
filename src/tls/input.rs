//! Reading the files named by `--tls-*` flags, with errors that name the flag, the path and the OS error.

use std::path::Path;

use super::TlsError;

/// Reads a whole TLS file (certificate, key, bundle). Files are small; reading them whole keeps the
/// parsers free of I/O.
pub(crate) fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// `--tls-key ./client.key`: how messages refer to a file given with a flag.
pub(crate) fn describe(flag: &str, path: &Path) -> String {
    format!("{flag} {}", path.display())
}
