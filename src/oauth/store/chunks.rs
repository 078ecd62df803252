//! Splitting a value over several Windows Credential Manager entries, which hold 2,560 bytes each
//! (`CRED_MAX_CREDENTIAL_BLOB_SIZE`): a token set with an ID token is often larger (apify/mcpc#409).
//!
//! The first entry starts with a version byte and the number of entries; the rest is the value,
//! in order. Pure, so it is tested on every platform.

/// Bytes per entry.
pub(super) const LIMIT: usize = 2560;
const VERSION: u8 = 1;
const HEADER: usize = 2;
/// The count is one byte.
const MAX_CHUNKS: usize = u8::MAX as usize;

/// The largest value that fits.
pub(super) const MAX_VALUE: usize = MAX_CHUNKS * LIMIT - HEADER;

/// The entries for `value`, or None if it does not fit in [`MAX_CHUNKS`].
pub(super) fn split(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    if value.len() > MAX_VALUE {
        return None;
    }
    let first_len = value.len().min(LIMIT - HEADER);
    let (first, rest) = value.split_at(first_len);
    let count = 1 + rest.len().div_ceil(LIMIT);
    let mut head = Vec::with_capacity(HEADER + first.len());
    head.push(VERSION);
    head.push(u8::try_from(count).ok()?);
    head.extend_from_slice(first);
    let mut chunks = vec![head];
    chunks.extend(rest.chunks(LIMIT).map(<[u8]>::to_vec));
    Some(chunks)
}

/// How many entries the value whose first entry is `first` has (None: not our layout).
pub(super) fn count(first: &[u8]) -> Option<usize> {
    match first {
        [VERSION, count, ..] if *count >= 1 => Some(usize::from(*count)),
        _ => None,
    }
}

/// The value back from its entries (None: a layout or length that [`split`] never makes).
pub(super) fn join(chunks: &[Vec<u8>]) -> Option<Vec<u8>> {
    let (first, rest) = chunks.split_first()?;
    if count(first)? != chunks.len() || first.len() > LIMIT {
        return None;
    }
    // Every entry but the last is full: anything else is a mix of two saves.
    let full = |chunk: &Vec<u8>| chunk.len() == LIMIT;
    if rest
        .split_last()
        .is_some_and(|(_, middle)| !middle.iter().all(full))
        || (!rest.is_empty() && first.len() != LIMIT)
    {
        return None;
    }
    let mut value = first[HEADER..].to_vec();
    for chunk in rest {
        value.extend_from_slice(chunk);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_boundary() {
        for len in [
            0,
            1,
            LIMIT - HEADER - 1,
            LIMIT - HEADER,
            LIMIT - HEADER + 1,
            2 * LIMIT - HEADER,
            2 * LIMIT - HEADER + 1,
            10_000,
            MAX_VALUE,
        ] {
            let value: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let chunks = split(&value).unwrap_or_default();
            assert!(chunks.iter().all(|chunk| chunk.len() <= LIMIT), "{len}");
            assert_eq!(count(&chunks[0]), Some(chunks.len()), "{len}");
            assert_eq!(join(&chunks), Some(value), "{len}");
        }
        assert_eq!(split(&[]).map(|chunks| chunks.len()), Some(1));
        assert_eq!(split(&[0; LIMIT - HEADER + 1]).map(|c| c.len()), Some(2));
    }

    #[test]
    fn refuses_what_does_not_fit_or_does_not_match() {
        assert_eq!(split(&vec![0; MAX_VALUE + 1]), None);
        let chunks = split(&[7; 3 * LIMIT]).unwrap_or_default();
        assert_eq!(join(&chunks[..2]), None, "a missing entry");
        let mut shortened = chunks.clone();
        shortened[1].pop();
        assert_eq!(join(&shortened), None, "an entry from another save");
        assert_eq!(join(&[vec![2, 1, 5]]), None, "unknown version");
        assert_eq!(join(&[vec![1, 0]]), None, "zero entries");
        assert_eq!(join(&[]), None);
    }
}
