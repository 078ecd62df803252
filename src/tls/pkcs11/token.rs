//! Finding things on a token: the slot whose token matches a URI, the user login, and the objects
//! (private key, certificate) the URI names.

use std::path::Path;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::error::{describe, Pkcs11Error};
use super::Pkcs11Uri;
use crate::config::Secret;

/// The slot holding the one token that matches `uri`, and that token's label.
pub(super) fn find_token(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, String), Pkcs11Error> {
    let (present, mut matching) = matching_tokens(ctx, uri)?;
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Pkcs11Error::NoToken {
            uri: uri.to_string(),
            tokens: present,
        }),
        _ => Err(Pkcs11Error::SeveralTokens {
            uri: uri.to_string(),
            tokens: matching.into_iter().map(|(_, label)| label).collect(),
        }),
    }
}

/// The labels of every initialised token present, and the slots (with labels) of those that
/// match a URI.
pub(super) type Tokens = (Vec<String>, Vec<(Slot, String)>);

/// The tokens present and those that match `uri`: a selector may span several tokens.
pub(super) fn matching_tokens(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Tokens, Pkcs11Error> {
    let call_failed = |e: CkError| {
        let (function, code) = describe(&e);
        Pkcs11Error::Call {
            function,
            token: "?".to_string(),
            code,
        }
    };
    if uri.library_manufacturer.is_some() || uri.library_description.is_some() {
        let info = ctx.get_library_info().map_err(call_failed)?;
        let library_matches = matches(&uri.library_manufacturer, info.manufacturer_id())
            && matches(&uri.library_description, info.library_description());
        if !library_matches {
            return Ok((Vec::new(), Vec::new()));
        }
    }
    let mut present = Vec::new();
    let mut matching = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(call_failed)? {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        // An uninitialised token (SoftHSM's spare slot) has no objects to offer.
        if !info.token_initialized() {
            continue;
        }
        present.push(info.label().to_string());
        let mut hit = uri.slot_id.is_none_or(|id| id == slot.id())
            && matches(&uri.token, info.label())
            && matches(&uri.manufacturer, info.manufacturer_id())
            && matches(&uri.serial, info.serial_number())
            && matches(&uri.model, info.model());
        if hit && (uri.slot_description.is_some() || uri.slot_manufacturer.is_some()) {
            hit = ctx.get_slot_info(slot).is_ok_and(|s| {
                matches(&uri.slot_description, s.slot_description())
                    && matches(&uri.slot_manufacturer, s.manufacturer_id())
            });
        }
        if hit {
            matching.push((slot, info.label().to_string()));
        }
    }
    Ok((present, matching))
}

fn matches(wanted: &Option<String>, actual: &str) -> bool {
    wanted.as_deref().is_none_or(|w| w == actual)
}

/// Where the PIN comes from: given (flag, variable, `pin-value`) or read from `pin-source` each
/// time a login needs it, so that nothing of it is kept in memory.
#[derive(Debug, Clone)]
pub(super) enum PinSource {
    None,
    Given(Secret),
    File(std::path::PathBuf),
}

impl PinSource {
    pub(super) fn read(&self) -> Result<Option<Secret>, Pkcs11Error> {
        match self {
            Self::None => Ok(None),
            Self::Given(pin) => Ok(Some(pin.clone())),
            Self::File(path) => read_pin_file(path).map(Some),
        }
    }
}

fn read_pin_file(path: &Path) -> Result<Secret, Pkcs11Error> {
    let bytes =
        zeroize::Zeroizing::new(
            std::fs::read(path).map_err(|source| Pkcs11Error::PinSource {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let text = String::from_utf8_lossy(&bytes);
    // `echo 1234 > pin` leaves a newline that is not part of the PIN.
    Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// Logs the user in (once per token for the whole application: PKCS#11 logins are shared by
/// every session of the process). The PIN is held only for the call.
pub(super) fn login(
    ctx: &Pkcs11,
    slot: Slot,
    session: &Session,
    token: &str,
    pin: &PinSource,
) -> Result<(), Pkcs11Error> {
    let info = ctx.get_token_info(slot).map_err(|e| call(e, token))?;
    if !info.login_required() {
        return Ok(());
    }
    if info.user_pin_locked() {
        return Err(Pkcs11Error::PinLocked {
            token: token.to_string(),
        });
    }
    let result = match pin.read()? {
        Some(pin) => {
            let auth = AuthPin::from(pin.expose().to_string());
            session.login(UserType::User, Some(&auth))
        }
        // A PIN pad or biometric reader asks the user itself.
        None if info.protected_authentication_path() => session.login(UserType::User, None),
        None => {
            return Err(Pkcs11Error::PinRequired {
                token: token.to_string(),
            })
        }
    };
    match result {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            // The wrong try may have been the last one.
            let locked = ctx
                .get_token_info(slot)
                .is_ok_and(|info| info.user_pin_locked());
            Err(if locked {
                Pkcs11Error::PinLocked {
                    token: token.to_string(),
                }
            } else {
                Pkcs11Error::WrongPin {
                    token: token.to_string(),
                }
            })
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Pkcs11Error::PinLocked {
            token: token.to_string(),
        }),
        Err(e) => Err(call(e, token)),
    }
}

/// The one object of `class` that the URI's `object`/`id` select (`id` given explicitly wins over
/// the URI's, for finding a certificate beside its key).
pub(super) fn find_one(
    session: &Session,
    class: ObjectClass,
    label: Option<&str>,
    id: Option<&[u8]>,
    what: &'static str,
    token: &str,
    uri: &Pkcs11Uri,
) -> Result<ObjectHandle, Pkcs11Error> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = id {
        template.push(Attribute::Id(id.to_vec()));
    }
    let mut found = session
        .find_objects(&template)
        .map_err(|e| call(e, token))?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Pkcs11Error::NoObject {
            what,
            object: describe_selector(label, id),
            token: token.to_string(),
            uri: uri.to_string(),
        }),
        count => Err(Pkcs11Error::SeveralObjects {
            what,
            count,
            token: token.to_string(),
            uri: uri.to_string(),
        }),
    }
}

fn describe_selector(label: Option<&str>, id: Option<&[u8]>) -> String {
    match (label, id) {
        (Some(label), Some(id)) => format!("label '{label}' and id {}", crate::config::hex(id)),
        (Some(label), None) => format!("label '{label}'"),
        (None, Some(id)) => format!("id {}", crate::config::hex(id)),
        (None, None) => "the URI".to_string(),
    }
}

/// A byte-string attribute (`CKA_ID`, `CKA_LABEL`, `CKA_VALUE`); `None` when the object lacks it.
pub(super) fn bytes_attribute(
    session: &Session,
    object: ObjectHandle,
    kind: AttributeType,
    token: &str,
) -> Result<Option<Vec<u8>>, Pkcs11Error> {
    let attributes = session
        .get_attributes(object, &[kind])
        .map_err(|e| call(e, token))?;
    Ok(attributes.into_iter().find_map(|a| match a {
        Attribute::Id(v) | Attribute::Label(v) | Attribute::Value(v) => Some(v),
        _ => None,
    }))
}

/// A boolean attribute (`CKA_SIGN`, `CKA_ALWAYS_AUTHENTICATE`); `None` when absent.
pub(super) fn bool_attribute(
    session: &Session,
    object: ObjectHandle,
    kind: AttributeType,
    token: &str,
) -> Result<Option<bool>, Pkcs11Error> {
    let attributes = session
        .get_attributes(object, &[kind])
        .map_err(|e| call(e, token))?;
    Ok(attributes.into_iter().find_map(|a| match a {
        Attribute::Sign(v) | Attribute::AlwaysAuthenticate(v) => Some(v),
        _ => None,
    }))
}

/// The key type (`CKK_RSA`, `CKK_EC`, …) of a key object.
pub(super) fn key_type(
    session: &Session,
    object: ObjectHandle,
    token: &str,
) -> Result<Option<cryptoki::object::KeyType>, Pkcs11Error> {
    let attributes = session
        .get_attributes(object, &[AttributeType::KeyType])
        .map_err(|e| call(e, token))?;
    Ok(attributes.into_iter().find_map(|a| match a {
        Attribute::KeyType(kind) => Some(kind),
        _ => None,
    }))
}

pub(super) fn call(e: CkError, token: &str) -> Pkcs11Error {
    if super::error::is_token_gone(&e) {
        return Pkcs11Error::TokenRemoved {
            token: token.to_string(),
        };
    }
    let (function, code) = describe(&e);
    Pkcs11Error::Call {
        function,
        token: token.to_string(),
        code,
    }
}
