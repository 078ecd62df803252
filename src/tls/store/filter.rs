//! The `ATTR=VALUE` filters of a selector (`sha1`, `sha256`, `subject`, `issuer`), applied to
//! any source's candidates: a source lists, this narrows.

use ring::digest;

use super::choose::Described;
use crate::config::Filter;

/// Whether `d` passes every filter.
pub(crate) fn passes(d: &Described, filters: &[Filter]) -> bool {
    let Some(leaf) = d.candidate.chain.first() else {
        return false;
    };
    filters.iter().all(|filter| match filter {
        // The Windows thumbprint: SHA-1 of the whole certificate, a name, not a security check.
        Filter::Sha1(want) => {
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, leaf).as_ref() == want.as_slice()
        }
        Filter::Sha256(want) => digest::digest(&digest::SHA256, leaf).as_ref() == want.as_slice(),
        Filter::Subject(part) => d.info.subject.to_lowercase().contains(part),
        Filter::Issuer(part) => d.info.issuer.to_lowercase().contains(part),
    })
}

/// `sha1=…;` of a certificate as Windows shows the thumbprint (upper-case hex), for listings.
pub(crate) fn sha1_hex(der: &[u8]) -> String {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    use super::*;
    use crate::config::{parse_selector, Platform};
    use crate::tls::store::Candidate;

    fn rsa() -> Described {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/client-rsa.crt");
        let der = CertificateDer::from_pem_file(path).unwrap();
        Described::new(Candidate {
            chain: vec![der],
            selector: "x".into(),
            key_location: "test".into(),
        })
        .unwrap()
    }

    fn filters(text: &str) -> Vec<Filter> {
        parse_selector(text, Platform::Windows, false)
            .unwrap()
            .filters
    }

    #[test]
    fn every_attribute_narrows_by_what_the_certificate_says() {
        let d = rsa();
        let leaf = d.candidate.chain[0].as_ref().to_vec();
        let thumbprint = sha1_hex(&leaf);
        let sha256: String = digest::digest(&digest::SHA256, &leaf)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}:"))
            .collect();
        for (selector, passes_it) in [
            (format!("windows:user;sha1={thumbprint}"), true),
            (
                format!("windows:user;sha1={}", thumbprint.to_lowercase()),
                true,
            ),
            (format!("windows:user;sha256={sha256}"), true),
            (
                "windows:user;sha1=00000000000000000000000000000000000000ff".into(),
                false,
            ),
            ("windows:user;subject=CN=MCP-TEST-CLIENT-RSA".into(), true),
            ("windows:user;subject=rogue".into(), false),
            (
                "windows:user;issuer=test CA;subject=client-rsa".into(),
                true,
            ),
            ("windows:user;issuer=rogue CA".into(), false),
            ("windows:user".into(), true),
        ] {
            assert_eq!(passes(&d, &filters(&selector)), passes_it, "{selector}");
        }
    }
}
