//! `--list-identities`: what a selector's source holds, each with the facts a user needs to pick
//! it (and whether a server's CA names would take it).

use super::{choose, filter, open};
use crate::config::StoreIdentity;
use crate::tls::TlsError;

/// One identity a source holds, for `--list-identities`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub subject: String,
    pub issuer: String,
    pub not_after: std::time::SystemTime,
    /// `RSA 2048`, `ECDSA P-256`, or `unknown`.
    pub key_type: String,
    pub key_location: String,
    pub selector: String,
    /// SHA-1 of the certificate in upper-case hex: the Windows thumbprint (`sha1=`).
    pub sha1: String,
    /// Whether the selector's attributes let it through (always true without attributes).
    pub selected: bool,
    described: choose::Described,
}

impl Listed {
    /// Whether a server sending `names` in its CertificateRequest would take it now (a certificate
    /// of one of those CAs, valid, for clientAuth).
    pub fn accepted_by(&self, names: &[&[u8]]) -> bool {
        let any_scheme: Vec<rustls::SignatureScheme> = self
            .described
            .kind
            .map(|k| k.candidate_schemes().to_vec())
            .unwrap_or_default();
        choose::verdict(
            &self.described,
            names,
            &any_scheme,
            std::time::SystemTime::now(),
        ) == choose::Verdict::Acceptable
    }
}

/// Everything the selector's source holds (`--list-identities`), with its description.
pub fn list(identity: &StoreIdentity) -> Result<(String, Vec<Listed>), TlsError> {
    let source = open(identity)?;
    let listed = source
        .candidates()?
        .into_iter()
        .filter_map(choose::Described::new)
        .map(|d| Listed {
            subject: d.info.subject.clone(),
            issuer: d.info.issuer.clone(),
            not_after: d.info.not_after,
            key_type: d
                .kind
                .map(|k| k.describe())
                .unwrap_or_else(|| "unknown".to_string()),
            key_location: d.candidate.key_location.clone(),
            selector: d.candidate.selector.clone(),
            sha1: d
                .candidate
                .chain
                .first()
                .map(|leaf| filter::sha1_hex(leaf))
                .unwrap_or_default(),
            selected: source.selects(&d.candidate)
                && filter::passes(&d, &identity.selector.filters),
            described: d,
        })
        .collect();
    Ok((source.describe(), listed))
}

/// The CA names of a CertificateRequest, in RFC 4514 form.
pub fn describe_ca_names(names: &[Vec<u8>]) -> String {
    let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    choose::describe_names(&names)
}
