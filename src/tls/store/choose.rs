//! The automatic choice (issue 21): of the identities a selector matches, the one the server
//! will take, judged from its CertificateRequest alone: an issuer in its chain is one of the CA
//! names the server sends, it is valid now (an expired identity is never chosen), its extended
//! key usage allows clientAuth (or it has none), and its key can make one of the offered
//! signature schemes. Pure: the caller passes the names, the schemes and the time.

use std::time::SystemTime;

use rustls::SignatureScheme;
use x509_cert::der::{Decode, Encode};

use super::Candidate;
use crate::tls::certinfo::{format_utc, CertInfo, Validity};
use crate::tls::pkcs11::{certificate_key, KeyKind};

const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
const ANY_USAGE: &str = "2.5.29.37.0";

/// A candidate with the facts the choice and the listings need, read once.
#[derive(Clone, Debug)]
pub(crate) struct Described {
    pub candidate: Candidate,
    pub info: CertInfo,
    /// `None`: a key this crate cannot classify (Ed25519); its scheme is left to the source.
    pub kind: Option<KeyKind>,
    /// The extended key usage allows TLS client authentication, or there is none.
    pub client_auth: bool,
    /// The DER names (outer SEQUENCE included, as CertificateRequest carries them) of every
    /// issuer along the chain.
    issuers: Vec<Vec<u8>>,
}

impl Described {
    /// `None` when the leaf cannot be parsed (such a certificate is not offered).
    pub fn new(candidate: Candidate) -> Option<Described> {
        let leaf = candidate.chain.first()?;
        let info = CertInfo::parse(leaf).ok()?;
        let cert = x509_cert::Certificate::from_der(leaf).ok()?;
        let client_auth = match cert
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        {
            Ok(Some((_, eku))) => eku.0.iter().any(|oid| {
                let oid = oid.to_string();
                oid == CLIENT_AUTH || oid == ANY_USAGE
            }),
            Ok(None) => true,
            Err(_) => false,
        };
        let issuers = candidate
            .chain
            .iter()
            .filter_map(|der| x509_cert::Certificate::from_der(der).ok())
            .filter_map(|c| c.tbs_certificate().issuer().to_der().ok())
            .collect();
        let kind = certificate_key(leaf).ok().map(|(kind, _)| kind);
        Some(Described {
            candidate,
            info,
            kind,
            client_auth,
            issuers,
        })
    }

    /// Whether an issuer along the chain is one of `names` (no names: the server accepts any).
    pub fn issued_by_one_of(&self, names: &[&[u8]]) -> bool {
        names.is_empty()
            || self
                .issuers
                .iter()
                .any(|issuer| names.iter().any(|n| n == issuer))
    }

    /// One line for listings and errors: subject, issuer, expiry, and the selector to copy.
    pub fn line(&self) -> String {
        format!(
            "{} (issued by {}, {} {}) → --tls-cert '{}'",
            self.info.subject,
            self.info.issuer,
            if self.info.not_after < SystemTime::now() {
                "expired"
            } else {
                "expires"
            },
            format_utc(self.info.not_after),
            self.candidate.selector
        )
    }
}

/// Why a candidate is not the one: each says what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Acceptable,
    Expired,
    NotYetValid,
    NotForClientAuth,
    NoCommonScheme,
    CaNotAsked,
}

impl Verdict {
    fn words(self) -> &'static str {
        match self {
            Verdict::Acceptable => "acceptable",
            Verdict::Expired => "expired, never chosen",
            Verdict::NotYetValid => "not valid yet",
            Verdict::NotForClientAuth => "its extended key usage does not allow clientAuth",
            Verdict::NoCommonScheme => "its key cannot make a signature the server accepts",
            Verdict::CaNotAsked => "its CA is not one the server asks for",
        }
    }
}

/// How `d` fares against a CertificateRequest.
pub(crate) fn verdict(
    d: &Described,
    names: &[&[u8]],
    schemes: &[SignatureScheme],
    now: SystemTime,
) -> Verdict {
    match d.info.validity_at(now) {
        Validity::Expired => return Verdict::Expired,
        Validity::NotYetValid => return Verdict::NotYetValid,
        Validity::Valid | Validity::ExpiresSoon { .. } => {}
    }
    if !d.client_auth {
        return Verdict::NotForClientAuth;
    }
    if let Some(kind) = d.kind {
        if !kind.candidate_schemes().iter().any(|s| schemes.contains(s)) {
            return Verdict::NoCommonScheme;
        }
    }
    if !d.issued_by_one_of(names) {
        return Verdict::CaNotAsked;
    }
    Verdict::Acceptable
}

/// The index of the identity to present, or the one-line reason none fits (listing them all,
/// each with its selector). Of several acceptable ones, the one that expires last: a renewed
/// certificate beside the one it replaces.
pub(crate) fn choose(
    described: &[Described],
    names: &[&[u8]],
    schemes: &[SignatureScheme],
    now: SystemTime,
) -> Result<usize, String> {
    let verdicts: Vec<Verdict> = described
        .iter()
        .map(|d| verdict(d, names, schemes, now))
        .collect();
    let best = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| **v == Verdict::Acceptable)
        .max_by_key(|(i, _)| described[*i].info.not_after)
        .map(|(i, _)| i);
    if let Some(i) = best {
        return Ok(i);
    }
    let held: Vec<String> = described
        .iter()
        .zip(&verdicts)
        .map(|(d, v)| format!("{} [{}]", d.line(), v.words()))
        .collect();
    Err(format!(
        "none of the {} identities is one the server accepts (it asks for a certificate issued \
         by {}): {}; pick one with --tls-cert, or ask the server's administrator which CA it trusts",
        described.len(),
        describe_names(names),
        held.join("; ")
    ))
}

/// As [`choose`], except that a request naming no CA keeps `presented` (the identity presented
/// last) while it is still acceptable. The OAuth signing paths (`--oauth-jwt-key tls`, a DPoP
/// proof with the TLS key, the `x5t#S256` a bound token is checked against) ask with no names,
/// and must get the certificate the servers were shown, not another valid one: RFC 8705 binds
/// the token to it.
pub(crate) fn choose_keeping(
    described: &[Described],
    names: &[&[u8]],
    schemes: &[SignatureScheme],
    now: SystemTime,
    presented: Option<usize>,
) -> Result<usize, String> {
    if names.is_empty() {
        let still_fits = |i: &usize| {
            described
                .get(*i)
                .is_some_and(|d| verdict(d, names, schemes, now) == Verdict::Acceptable)
        };
        if let Some(i) = presented.filter(still_fits) {
            return Ok(i);
        }
    }
    choose(described, names, schemes, now)
}

/// The CA names of a CertificateRequest in RFC 4514 form, for messages.
pub(crate) fn describe_names(names: &[&[u8]]) -> String {
    if names.is_empty() {
        return "any CA (it names none)".to_string();
    }
    names
        .iter()
        .map(|n| {
            x509_cert::name::Name::from_der(n)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "an unreadable name".to_string())
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    use super::*;

    fn fixture(name: &str) -> Vec<CertificateDer<'static>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn described(name: &str) -> Described {
        Described::new(Candidate {
            chain: fixture(name),
            selector: format!("pkcs11:token=t;object={name}"),
            key_location: "test".into(),
        })
        .unwrap()
    }

    /// The DER subject of a CA fixture: the name a server trusting it sends.
    fn name_of(ca: &str) -> Vec<u8> {
        let der = &fixture(ca)[0];
        let cert = x509_cert::Certificate::from_der(der).unwrap();
        cert.tbs_certificate().subject().to_der().unwrap()
    }

    const RSA_AND_EC: &[SignatureScheme] = &[
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::ECDSA_NISTP256_SHA256,
    ];

    fn all() -> Vec<Described> {
        [
            "client-expired.crt",
            "rogue-client.crt",
            "client-chain.crt",
            "client-rsa.crt",
        ]
        .into_iter()
        .map(described)
        .collect()
    }

    #[test]
    fn the_identity_from_the_ca_the_server_names_is_chosen() {
        let now = SystemTime::now();
        let ids = all();
        let rogue = name_of("rogue-ca.crt");
        assert_eq!(choose(&ids, &[&rogue], RSA_AND_EC, now), Ok(1));
        // The intermediate's own issuer is the root: a server trusting the root takes the chain.
        let intermediate = name_of("intermediate-ca.crt");
        assert_eq!(choose(&ids, &[&intermediate], RSA_AND_EC, now), Ok(2));
        let root = name_of("ca.crt");
        let chosen = choose(&ids, &[&root], RSA_AND_EC, now).unwrap();
        assert!(chosen == 2 || chosen == 3, "{chosen}");
        assert_ne!(chosen, 0, "the expired identity was chosen");
    }

    #[test]
    fn an_expired_identity_is_never_chosen_even_when_it_is_the_only_match() {
        let ids = vec![
            described("client-expired.crt"),
            described("rogue-client.crt"),
        ];
        let root = name_of("ca.crt");
        let why = choose(&ids, &[&root], RSA_AND_EC, SystemTime::now()).unwrap_err();
        assert!(why.contains("expired, never chosen"), "{why}");
        assert!(why.contains("CN=mcp-test-rogue-client"), "{why}");
        assert!(
            why.contains("--tls-cert 'pkcs11:token=t;object=rogue-client.crt'"),
            "{why}"
        );
        assert!(why.contains("CN=mcp-secure-remote test CA"), "{why}");
        // Before it expired, it was the one.
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        assert_eq!(choose(&ids, &[&root], RSA_AND_EC, then), Ok(0));
    }

    #[test]
    fn a_key_that_cannot_make_an_offered_scheme_is_not_chosen() {
        let ids = vec![described("client-ec.crt"), described("client-rsa.crt")];
        let root = name_of("ca.crt");
        let rsa_only = [SignatureScheme::RSA_PKCS1_SHA256];
        assert_eq!(choose(&ids, &[&root], &rsa_only, SystemTime::now()), Ok(1));
        let ec_only = [SignatureScheme::ECDSA_NISTP256_SHA256];
        assert_eq!(choose(&ids, &[&root], &ec_only, SystemTime::now()), Ok(0));
    }

    #[test]
    fn a_server_that_names_no_ca_takes_any_valid_identity() {
        let ids = vec![
            described("client-expired.crt"),
            described("rogue-client.crt"),
        ];
        assert_eq!(choose(&ids, &[], RSA_AND_EC, SystemTime::now()), Ok(1));
    }

    #[test]
    fn a_request_naming_no_ca_keeps_the_identity_presented_last_while_it_fits() {
        let now = SystemTime::now();
        let ids = all();
        let unprompted = choose(&ids, &[], RSA_AND_EC, now).unwrap();
        // The rogue identity is the one a server naming the rogue CA was shown; it is not the
        // one an unprompted choice makes (so keeping it is visible).
        assert_eq!(
            choose(&ids, &[&name_of("rogue-ca.crt")], RSA_AND_EC, now),
            Ok(1)
        );
        assert_ne!(unprompted, 1);
        assert_eq!(choose_keeping(&ids, &[], RSA_AND_EC, now, Some(1)), Ok(1));
        // A request that names CAs chooses by them, whatever was presented before.
        let root = name_of("intermediate-ca.crt");
        assert_eq!(
            choose_keeping(&ids, &[&root], RSA_AND_EC, now, Some(1)),
            Ok(2)
        );
        // An identity that no longer fits (expired; or a scheme the request lacks) is not kept.
        assert_eq!(
            choose_keeping(&ids, &[], RSA_AND_EC, now, Some(0)),
            Ok(unprompted)
        );
        let ec_only = [SignatureScheme::ECDSA_NISTP256_SHA256];
        let kept = choose_keeping(&ids, &[], &ec_only, now, Some(3));
        assert_ne!(
            kept,
            Ok(3),
            "an RSA identity kept for an ECDSA-only request"
        );
        assert_eq!(
            choose_keeping(&ids, &[], RSA_AND_EC, now, Some(99)),
            Ok(unprompted)
        );
    }

    #[test]
    fn a_server_certificate_is_not_offered_as_a_client_identity() {
        let d = described("server-rsa1024.crt");
        assert!(!d.client_auth);
        assert_eq!(
            verdict(&d, &[], RSA_AND_EC, SystemTime::now()),
            Verdict::NotForClientAuth
        );
    }
}
