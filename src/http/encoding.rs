//! Response bodies in a `Content-Encoding` the bridge did not ask for. It sends
//! `Accept-Encoding: identity`, yet misconfigured proxies gzip anyway: gzip (`x-gzip`) and deflate
//! (zlib-wrapped as RFC 9110 says, or raw as some servers send it) are decoded here, with flate2's
//! pure-Rust backend; any other coding is named in the error a read returns.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use ureq::http::Response;
use ureq::Body;

/// A `Content-Encoding` this bridge cannot decode (`br`, `zstd`, `compress`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedEncoding(pub String);

impl fmt::Display for UnsupportedEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server sent the body with Content-Encoding: {}, which this bridge cannot decode \
             (it asks for identity; gzip and deflate are decoded): turn that compression off for \
             this URL on the server or proxy",
            self.0
        )
    }
}

impl std::error::Error for UnsupportedEncoding {}

/// One content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// The codings of a `Content-Encoding` value in the order they were applied (`identity` dropped).
fn codings(content_encoding: &str) -> Result<Vec<Coding>, UnsupportedEncoding> {
    content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .map(|c| match c.as_str() {
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "deflate" => Ok(Coding::Deflate),
            _ => Err(UnsupportedEncoding(content_encoding.trim().to_string())),
        })
        .collect()
}

/// A reader of the decoded body.
pub type Decoded = Box<dyn Read + Send>;

/// `body` decoded as `content_encoding` says (`None` or `identity`: as it is). An encoding that
/// cannot be decoded gives a reader whose first read fails with [`UnsupportedEncoding`], so that
/// callers handle it where they already handle a broken body.
pub fn decode(body: impl Read + Send + 'static, content_encoding: Option<&str>) -> Decoded {
    let codings = match content_encoding.map(codings) {
        None => return Box::new(body),
        Some(Ok(codings)) => codings,
        Some(Err(unsupported)) => return Box::new(Failing(Some(unsupported))),
    };
    // Applied in order, so undone in reverse.
    codings
        .into_iter()
        .rev()
        .fold(Box::new(body) as Decoded, |inner, coding| match coding {
            Coding::Gzip => Box::new(MultiGzDecoder::new(BufReader::new(inner))),
            Coding::Deflate => Box::new(Deflate::Undecided(Some(BufReader::new(inner)))),
        })
}

/// The body of `resp`, decoded as its `Content-Encoding` says.
pub fn decoded_body(resp: Response<Body>) -> Decoded {
    let encoding = resp
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap_or("(not ASCII)").to_string());
    decode(resp.into_body().into_reader(), encoding.as_deref())
}

/// Reads `reader` to its end, refusing more than `limit` bytes (a compressed body can expand
/// without bound, so the limit applies to what it decodes to).
pub fn read_limited(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the body is larger than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Fails every read with the unsupported encoding (once; then reports EOF).
struct Failing(Option<UnsupportedEncoding>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            None => Ok(0),
        }
    }
}

/// `deflate` is zlib-wrapped by the standard, raw in some servers: the first two bytes tell.
enum Deflate<R: BufRead> {
    Undecided(Option<R>),
    Zlib(ZlibDecoder<R>),
    Raw(DeflateDecoder<R>),
}

/// RFC 1950 header: compression method 8, and the two bytes a multiple of 31.
fn is_zlib_header(head: &[u8]) -> bool {
    match head {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => true,
    }
}

impl<R: BufRead> Read for Deflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Deflate::Undecided(inner) = self {
            let Some(mut inner) = inner.take() else {
                return Ok(0);
            };
            let zlib = is_zlib_header(inner.fill_buf()?);
            *self = if zlib {
                Deflate::Zlib(ZlibDecoder::new(inner))
            } else {
                Deflate::Raw(DeflateDecoder::new(inner))
            };
        }
        match self {
            Deflate::Zlib(d) => d.read(buf),
            Deflate::Raw(d) => d.read(buf),
            Deflate::Undecided(_) => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    const TEXT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(mut r: Decoded) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn identity_and_no_encoding_pass_through() {
        assert_eq!(read_all(decode(TEXT, None)).unwrap(), TEXT);
        assert_eq!(read_all(decode(TEXT, Some("identity"))).unwrap(), TEXT);
    }

    #[test]
    fn gzip_and_x_gzip_are_decoded() {
        assert_eq!(
            read_all(decode(io::Cursor::new(gzip(TEXT)), Some("gzip"))).unwrap(),
            TEXT
        );
        assert_eq!(
            read_all(decode(io::Cursor::new(gzip(TEXT)), Some(" X-GZIP "))).unwrap(),
            TEXT
        );
    }

    #[test]
    fn deflate_is_decoded_zlib_wrapped_or_raw() {
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(TEXT).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(
            read_all(decode(io::Cursor::new(zlib), Some("deflate"))).unwrap(),
            TEXT
        );
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(TEXT).unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(
            read_all(decode(io::Cursor::new(raw), Some("deflate"))).unwrap(),
            TEXT
        );
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&gzip(TEXT)).unwrap();
        let both = zlib.finish().unwrap();
        assert_eq!(
            read_all(decode(io::Cursor::new(both), Some("gzip, deflate"))).unwrap(),
            TEXT
        );
    }

    #[test]
    fn an_unknown_encoding_is_named_by_the_first_read() {
        let err = read_all(decode(TEXT, Some("br"))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string()
                .starts_with("the server sent the body with Content-Encoding: br, which this bridge cannot decode"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_garbage() {
        let mut bad = gzip(TEXT);
        let last = bad.len() - 12;
        bad[last] ^= 0xff;
        assert!(read_all(decode(io::Cursor::new(bad), Some("gzip"))).is_err());
    }

    #[test]
    fn the_limit_applies_to_the_decoded_size() {
        let big = vec![b'x'; 100_000];
        let packed = gzip(&big);
        assert!(packed.len() < 1_000);
        let err = read_limited(
            decode(io::Cursor::new(packed.clone()), Some("gzip")),
            50_000,
        )
        .unwrap_err();
        assert!(err.to_string().contains("larger than 50000 bytes"), "{err}");
        let ok = read_limited(decode(io::Cursor::new(packed), Some("gzip")), 100_000).unwrap();
        assert_eq!(ok.len(), 100_000);
    }
}
