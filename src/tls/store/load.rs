//! What a `--tls-cert` selector comes to at start-up: its source listed, its filters applied, and
//! either the one usable identity (loaded and checked now, as files are) or a resolver that
//! chooses in each handshake; and the fingerprint rotation compares.

use std::sync::Arc;

use super::{choose, filter, open, resolver, IdentitySource};
use crate::config::StoreIdentity;
use crate::tls::TlsError;

/// What a selector comes to at start-up.
pub(crate) enum Loaded {
    /// One usable identity: presented in every handshake, like a file identity.
    One(Box<crate::tls::identity::Identity>),
    /// Several: each handshake chooses from the server's CertificateRequest.
    Several(Arc<resolver::StoreResolver>),
}

/// Lists the selector's source, applies its filters, and settles what to present: the one usable
/// identity (its key opened and checked now, as for files), or a resolver for several. An expired
/// identity is never presented; when it is all there is, that is the error.
pub(crate) fn load(
    identity: &StoreIdentity,
    now: std::time::SystemTime,
) -> Result<Loaded, TlsError> {
    use crate::tls::certinfo::Validity;

    let selector = identity.selector.to_string();
    let source: Arc<dyn IdentitySource> = Arc::from(open(identity)?);
    let what = format!("--tls-cert {selector} ({})", source.describe());
    let held: Vec<choose::Described> = source
        .candidates()?
        .into_iter()
        .filter_map(|candidate| {
            let selector = candidate.selector.clone();
            let described = choose::Described::new(candidate);
            if described.is_none() {
                log::warn!("{what}: {selector} has a certificate that cannot be read; not offered");
            }
            described
        })
        .collect();
    let selected: Vec<choose::Described> = held
        .iter()
        .filter(|d| source.selects(&d.candidate) && filter::passes(d, &identity.selector.filters))
        .cloned()
        .collect();
    let no_identity = |why: &str| TlsError::NoIdentity {
        selector: selector.clone(),
        source: source.describe(),
        why: why.to_string(),
        held: held.iter().map(choose::Described::line).collect(),
    };
    if selected.is_empty() {
        return Err(no_identity(if held.is_empty() {
            "no certificate with its private key"
        } else {
            "no identity matches the selector"
        }));
    }
    let mut usable: Vec<choose::Described> = selected
        .iter()
        .filter(|d| {
            matches!(
                d.info.validity_at(now),
                Validity::Valid | Validity::ExpiresSoon { .. }
            )
        })
        .cloned()
        .collect();
    match usable.len() {
        0 if selected.len() == 1 => Err(no_identity(&format!(
            "the only identity it selects, {}, is expired or not yet valid, and an expired \
             identity is never chosen: renew it",
            selected[0].line()
        ))),
        0 => Err(no_identity(
            "every identity is expired or not yet valid (an expired identity is never chosen): \
             renew one",
        )),
        1 => {
            let d = usable.remove(0);
            for other in selected
                .iter()
                .filter(|o| o.candidate.selector != d.candidate.selector)
            {
                log::info!(
                    "{what}: not offering {} (expired or not yet valid)",
                    other.line()
                );
            }
            let signing = source.signing_key(&d.candidate)?;
            Ok(Loaded::One(Box::new(crate::tls::identity::from_store(
                &d, signing, now,
            ))))
        }
        _ => {
            for d in &usable {
                log::debug!("{what}: candidate {}", d.line());
            }
            Ok(Loaded::Several(Arc::new(resolver::StoreResolver::new(
                source, what, usable,
            ))))
        }
    }
}

/// A fingerprint of what the selector's source holds now, for certificate rotation: it changes
/// when a certificate is renewed, added or removed.
pub(crate) fn stamp(identity: &StoreIdentity) -> Result<Vec<u8>, TlsError> {
    let source = open(identity)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for candidate in source.candidates()? {
        ctx.update(candidate.selector.as_bytes());
        for cert in &candidate.chain {
            ctx.update(cert.as_ref());
        }
    }
    Ok(ctx.finish().as_ref().to_vec())
}
