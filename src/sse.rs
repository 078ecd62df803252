//! Incremental, memory-bounded parser for the WHATWG `text/event-stream` format (Server-Sent Events).
//!
//! Pure: it turns byte chunks (split anywhere, even inside a CRLF or a UTF-8 character) into events
//! and never does I/O, so the HTTP side can feed it whatever the socket returns. Follows the
//! "Interpreting an event stream" algorithm of the HTML standard, with one deliberate addition: a
//! size bound, because a hostile or broken server must not make the bridge allocate without limit.

use std::fmt;
use std::time::Duration;

/// The UTF-8 byte order mark, which the standard says to skip once at the start of the stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event: an `event:` type plus the joined `data:` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `"message"` when the server did not set one.
    pub event: String,
    /// The `data:` lines joined with `\n` (no trailing newline). Never empty: events whose data is
    /// empty (such as the priming events `id: x` + `data: ` of MCP 2025-11-25 servers) are not
    /// dispatched. It may still be whitespace only (`data:  `); callers check before forwarding.
    pub data: String,
    /// The last event ID in effect when this event was dispatched (the `id:` of this event or of
    /// an earlier one; `None` when none was set or the server reset it with an empty `id:`).
    pub id: Option<String>,
}

/// What the parser produces, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    /// A complete event with non-empty data.
    Event(SseEvent),
    /// A valid `retry:` field: the server's requested reconnection delay.
    Retry(Duration),
}

/// Why the parser gave up. After an error the stream must be dropped: the parser keeps
/// returning the same error and does not grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A single line or the data of one event exceeded the configured bound.
    EventTooLarge { limit: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => write!(
                f,
                "server sent an SSE event larger than {limit} bytes; the stream was dropped \
                 (raise --max-message-size if such large messages are expected)"
            ),
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental parser state: the unfinished line and the event being assembled.
#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// How many bytes of the BOM have matched at the start of the stream; `None` once decided.
    bom_matched: Option<usize>,
    /// Bytes of the current line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF at the start of the next chunk completes a CRLF
    /// and must not produce an extra (dispatching) empty line.
    after_cr: bool,
    /// The data buffer: each `data:` value followed by `\n`.
    data: Vec<u8>,
    /// The `event:` type buffer; empty means "message".
    event_type: String,
    /// The last event ID buffer, updated as soon as an `id:` field is seen.
    id_buffer: Option<String>,
    /// Set once a bound was exceeded; the parser then refuses all further input.
    failed: bool,
}

impl SseParser {
    /// A parser that refuses any line or event larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            max_event_bytes,
            bom_matched: Some(0),
            line: Vec::new(),
            after_cr: false,
            data: Vec::new(),
            event_type: String::new(),
            id_buffer: None,
            failed: false,
        }
    }

    /// Feeds the next chunk of bytes (arbitrary split points), appending the completed items to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseError> {
        if self.failed {
            return Err(self.too_large());
        }
        let rest = self.skip_bom(chunk);
        let result = self.feed_lines(rest, out);
        if result.is_err() {
            self.failed = true;
            // Release what the oversized event held: the caller drops the stream anyway.
            self.line = Vec::new();
            self.data = Vec::new();
        }
        result
    }

    /// Memory the unfinished line and event hold now (for the bridge's memory budget).
    pub fn buffered(&self) -> usize {
        self.line.capacity() + self.data.capacity() + self.event_type.capacity()
    }

    /// The last event ID seen so far, for a `Last-Event-ID` header on reconnect.
    pub fn last_event_id(&self) -> Option<&str> {
        self.id_buffer.as_deref()
    }

    fn too_large(&self) -> SseError {
        SseError::EventTooLarge {
            limit: self.max_event_bytes,
        }
    }

    /// Consumes a leading BOM, which may itself arrive split across chunks.
    fn skip_bom<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        let Some(mut matched) = self.bom_matched else {
            return chunk;
        };
        let mut consumed = 0;
        for &byte in chunk {
            if byte != BOM[matched] {
                // Not a BOM after all: the bytes matched so far are ordinary line content
                // (0xEF/0xBB are never line terminators, so they can go straight to the line).
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom_matched = None;
                return &chunk[consumed..];
            }
            matched += 1;
            consumed += 1;
            if matched == BOM.len() {
                self.bom_matched = None;
                return &chunk[consumed..];
            }
        }
        self.bom_matched = Some(matched);
        &chunk[consumed..]
    }

    fn feed_lines(&mut self, mut rest: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseError> {
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.append_to_line(&rest[..end])?;
            let line = std::mem::take(&mut self.line);
            if let Some(line) = self.adopt_first_data_line(line)? {
                self.process_line(&line, out)?;
                // Reuse the allocation for the next line.
                self.line = line;
                self.line.clear();
            }

            let terminator = rest[end];
            rest = &rest[end + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.append_to_line(rest)
    }

    /// The first `data:` line of an event becomes the data buffer itself (its prefix shifted out
    /// in place) instead of being copied: a multi-megabyte message is then held once, not twice.
    /// Returns the line back when it is anything else.
    fn adopt_first_data_line(&mut self, mut line: Vec<u8>) -> Result<Option<Vec<u8>>, SseError> {
        if !self.data.is_empty() || !line.starts_with(b"data:") {
            return Ok(Some(line));
        }
        let prefix = if line.get(5) == Some(&b' ') { 6 } else { 5 };
        if line.len() - prefix + 1 > self.max_event_bytes {
            return Err(self.too_large());
        }
        line.drain(..prefix);
        line.push(b'\n');
        self.data = line;
        Ok(None)
    }

    fn append_to_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max_event_bytes {
            return Err(self.too_large());
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // comment, e.g. a keep-alive
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(self.too_large());
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => self.event_type = String::from_utf8_lossy(value).into_owned(),
            // A value containing NUL is ignored, as the standard requires.
            b"id" if !value.contains(&0) => {
                // A trailing CR cannot survive line splitting; strip it anyway, because a CR
                // in a Last-Event-ID header makes the reconnect request invalid.
                let value = value.strip_suffix(b"\r").unwrap_or(value);
                self.id_buffer = if value.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(value).into_owned())
                };
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits, so the only possible failure is overflow: ignore such a value.
                if let Some(ms) = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    out.push(SseItem::Retry(Duration::from_millis(ms)));
                }
            }
            _ => {} // unknown fields are ignored
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        let event_type = std::mem::take(&mut self.event_type);
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the trailing "\n" appended after the last data line
        if data.is_empty() {
            // The standard would dispatch `data: ` (one empty data line) as an event with empty
            // data; MCP priming events look exactly like that and must never reach stdout.
            // Reuse the buffer's allocation for the next event.
            self.data = data;
            return;
        }
        let data = match String::from_utf8(data) {
            Ok(text) => text,
            Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
        };
        let event = if event_type.is_empty() {
            "message".to_owned()
        } else {
            event_type
        };
        out.push(SseItem::Event(SseEvent {
            event,
            data,
            id: self.id_buffer.clone(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_whole(bytes: &[u8]) -> Vec<SseItem> {
        let mut parser = SseParser::new(1 << 20);
        let mut out = Vec::new();
        parser.feed(bytes, &mut out).unwrap();
        out
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut parser = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out
    }

    fn event(event: &str, data: &str, id: Option<&str>) -> SseItem {
        SseItem::Event(SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        })
    }

    /// Feeds `bytes` split at every position (two chunks) and one byte at a time, and checks that
    /// each gives the same items as feeding it whole.
    fn assert_split_invariant(bytes: &[u8]) -> Vec<SseItem> {
        let whole = parse_whole(bytes);
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(parse_chunks(&[a, b]), whole, "split at {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&singles), whole, "byte by byte");
        whole
    }

    #[test]
    fn parses_simple_message_event() {
        assert_eq!(
            parse_whole(b"data: {\"a\":1}\n\n"),
            vec![event("message", "{\"a\":1}", None)]
        );
    }

    #[test]
    fn accepts_crlf_lf_and_cr_line_endings() {
        let expected = vec![event("message", "x", None), event("message", "y", None)];
        assert_eq!(parse_whole(b"data: x\r\n\r\ndata: y\r\n\r\n"), expected);
        assert_eq!(parse_whole(b"data: x\n\ndata: y\n\n"), expected);
        assert_eq!(parse_whole(b"data: x\r\rdata: y\r\r"), expected);
        assert_eq!(parse_whole(b"data: x\r\n\ndata: y\r\r\n"), expected);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        // If the LF after a chunk-final CR counted as a second line end, the blank line would
        // dispatch "a" on its own and "b" would be a separate event.
        let items = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(items, vec![event("message", "a\nb", None)]);
    }

    #[test]
    fn skips_leading_bom_even_when_split() {
        let mut stream = BOM.to_vec();
        stream.extend_from_slice(b"data: x\n\n");
        assert_eq!(parse_whole(&stream), vec![event("message", "x", None)]);
        assert_eq!(
            parse_chunks(&[&stream[..1], &stream[1..2], &stream[2..]]),
            vec![event("message", "x", None)]
        );
    }

    #[test]
    fn bom_is_only_skipped_at_stream_start() {
        let mut stream = b"data: x\n\n".to_vec();
        stream.extend_from_slice(&BOM);
        stream.extend_from_slice(b"data: y\n\n");
        // The second "BOM" is part of a field name, which is then unknown and ignored.
        assert_eq!(parse_whole(&stream), vec![event("message", "x", None)]);
    }

    #[test]
    fn partial_bom_is_ordinary_content() {
        // EF BB then 'd': not a BOM; the bytes become part of an (unknown) field name.
        let items = parse_whole(b"\xEF\xBBdata: x\n\ndata: y\n\n");
        assert_eq!(items, vec![event("message", "y", None)]);
    }

    #[test]
    fn ignores_comment_lines() {
        let items = parse_whole(b": ping\r\n\r\n:\r\ndata: x\r\n: mid-event comment\r\n\r\n");
        assert_eq!(items, vec![event("message", "x", None)]);
    }

    #[test]
    fn removes_only_one_space_after_colon() {
        assert_eq!(
            parse_whole(b"data:  two\n\ndata:none\n\n"),
            vec![
                event("message", " two", None),
                event("message", "none", None)
            ]
        );
    }

    #[test]
    fn line_without_colon_is_field_with_empty_value() {
        // "data" alone appends an empty line to the data buffer.
        assert_eq!(
            parse_whole(b"data\ndata\n\n"),
            vec![event("message", "\n", None)]
        );
    }

    #[test]
    fn joins_multiple_data_lines_with_newline() {
        assert_eq!(
            parse_whole(b"data: {\"a\":\ndata: 1}\n\n"),
            vec![event("message", "{\"a\":\n1}", None)]
        );
    }

    #[test]
    fn event_type_is_set_and_reset_after_dispatch() {
        assert_eq!(
            parse_whole(b"event: endpoint\ndata: /message?sessionId=1\n\ndata: x\n\n"),
            vec![
                event("endpoint", "/message?sessionId=1", None),
                event("message", "x", None)
            ]
        );
    }

    #[test]
    fn event_type_resets_even_when_nothing_is_dispatched() {
        assert_eq!(
            parse_whole(b"event: odd\n\ndata: x\n\n"),
            vec![event("message", "x", None)]
        );
    }

    #[test]
    fn id_sets_last_event_id_and_persists() {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        parser
            .feed(b"id: 7\ndata: a\n\ndata: b\n\n", &mut out)
            .unwrap();
        assert_eq!(
            out,
            vec![
                event("message", "a", Some("7")),
                event("message", "b", Some("7"))
            ]
        );
        assert_eq!(parser.last_event_id(), Some("7"));
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        parser.feed(b"id: 1\n\nid: a\0b\n\n", &mut out).unwrap();
        assert_eq!(parser.last_event_id(), Some("1"));
    }

    #[test]
    fn empty_id_resets_last_event_id() {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        parser.feed(b"id: 1\n\nid\n\n", &mut out).unwrap();
        assert_eq!(parser.last_event_id(), None);
    }

    #[test]
    fn id_never_keeps_carriage_return() {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        parser.feed(b"id: abc\r", &mut out).unwrap();
        parser.feed(b"\n", &mut out).unwrap();
        assert_eq!(parser.last_event_id(), Some("abc"));
    }

    #[test]
    fn priming_event_with_empty_data_is_not_emitted_but_updates_id() {
        // TypeScript server-everything, LF line endings.
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        parser
            .feed(b"id: 2b1c7e0a-uuid\ndata: \n\n", &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(parser.last_event_id(), Some("2b1c7e0a-uuid"));
    }

    #[test]
    fn retry_with_digits_is_emitted() {
        assert_eq!(
            parse_whole(b"retry: 500\r\n"),
            vec![SseItem::Retry(Duration::from_millis(500))]
        );
    }

    #[test]
    fn retry_with_non_digits_or_overflow_is_ignored() {
        assert!(parse_whole(b"retry: 5s\nretry: -1\nretry:\nretry: 1.5\n").is_empty());
        assert!(parse_whole(b"retry: 99999999999999999999999\n").is_empty());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(
            parse_whole(b"foo: bar\nData: no\ndata: x\n\n"),
            vec![event("message", "x", None)]
        );
    }

    #[test]
    fn incomplete_event_at_end_is_not_dispatched() {
        assert!(parse_whole(b"data: x\n").is_empty());
        assert!(parse_whole(b"data: x").is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            parse_whole(b"event: \xFF\ndata: a\xC3\n\n"),
            vec![event("\u{FFFD}", "a\u{FFFD}", None)]
        );
    }

    #[test]
    fn utf8_character_split_across_chunks_survives() {
        let stream = "data: h\u{e9}llo \u{4e16}\n\n".as_bytes();
        assert_eq!(
            assert_split_invariant(stream),
            vec![event("message", "h\u{e9}llo \u{4e16}", None)]
        );
    }

    #[test]
    fn python_server_crlf_stream_is_split_invariant() {
        let stream = b"id: 0\r\ndata: \r\nretry: 500\r\n\r\n: ping - 2026-01-01\r\n\r\n\
event: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n";
        assert_eq!(
            assert_split_invariant(stream),
            vec![
                SseItem::Retry(Duration::from_millis(500)),
                event(
                    "message",
                    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",
                    Some("1")
                )
            ]
        );
    }

    #[test]
    fn typescript_server_lf_stream_is_split_invariant() {
        let stream = b"id: 5f3c-uuid\ndata: \n\nevent: message\nid: 5f3c-uuid_1\n\
data: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":0}\n\n";
        assert_eq!(
            assert_split_invariant(stream),
            vec![event(
                "message",
                "{\"result\":{},\"jsonrpc\":\"2.0\",\"id\":0}",
                Some("5f3c-uuid_1")
            )]
        );
    }

    #[test]
    fn cr_only_stream_is_split_invariant() {
        let stream = b"event: endpoint\rdata: /messages/?session_id=ab\r\r:c\rdata: a\rdata: b\r\r";
        assert_eq!(
            assert_split_invariant(stream),
            vec![
                event("endpoint", "/messages/?session_id=ab", None),
                event("message", "a\nb", None)
            ]
        );
    }

    #[test]
    fn overlong_line_is_refused_without_growing() {
        let mut parser = SseParser::new(16);
        let mut out = Vec::new();
        parser.feed(b"data: 0123456789", &mut out).unwrap();
        assert_eq!(
            parser.feed(b"abcdef", &mut out),
            Err(SseError::EventTooLarge { limit: 16 })
        );
        // Still refused, and nothing is retained.
        assert!(parser.feed(b"\n\n", &mut out).is_err());
        assert!(parser.line.capacity() == 0 && parser.data.capacity() == 0);
        assert!(out.is_empty());
    }

    #[test]
    fn overlong_event_of_short_lines_is_refused() {
        let mut parser = SseParser::new(16);
        let mut out = Vec::new();
        let result = parser.feed(b"data: 12345\ndata: 12345\ndata: 12345\n", &mut out);
        assert_eq!(result, Err(SseError::EventTooLarge { limit: 16 }));
    }

    #[test]
    fn event_at_the_limit_is_accepted() {
        let mut parser = SseParser::new(16);
        let mut out = Vec::new();
        // Line "data:0123456789a" is 16 bytes; data buffer holds 11 + 1 bytes.
        parser.feed(b"data:0123456789a\n\n", &mut out).unwrap();
        assert_eq!(out, vec![event("message", "0123456789a", None)]);
    }

    #[test]
    fn error_message_is_one_line() {
        let text = SseError::EventTooLarge { limit: 64 }.to_string();
        assert!(text.contains("64 bytes") && !text.contains('\n'));
    }

    /// Strategy for a valid event stream built from known-good pieces, with mixed line endings.
    fn valid_stream() -> impl Strategy<Value = Vec<u8>> {
        let line_end = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        let field = prop_oneof![
            "[ -~\u{e9}\u{4e16}]{0,12}".prop_map(|v| format!("data: {v}")),
            "[a-z]{0,6}".prop_map(|v| format!("event: {v}")),
            "[a-z0-9-]{0,8}".prop_map(|v| format!("id: {v}")),
            "[0-9]{1,5}".prop_map(|v| format!("retry: {v}")),
            "[ -~]{0,8}".prop_map(|v| format!(":{v}")),
            Just(String::new()),
        ];
        proptest::collection::vec((field, line_end), 0..24).prop_map(|lines| {
            let mut stream = String::new();
            for (line, end) in lines {
                // A line made only of a comment can't contain a CR/LF by construction.
                stream.push_str(&line);
                stream.push_str(end);
            }
            stream.into_bytes()
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)
        ) {
            let mut parser = SseParser::new(48);
            let mut out = Vec::new();
            for chunk in &chunks {
                if parser.feed(chunk, &mut out).is_err() {
                    break;
                }
                prop_assert!(parser.line.len() <= 48);
                prop_assert!(parser.data.len() <= 48);
            }
        }

        #[test]
        fn chunking_does_not_change_events(
            stream in valid_stream(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8)
        ) {
            let whole = parse_whole(&stream);
            let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            positions.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for pos in positions {
                chunks.push(&stream[start..pos]);
                start = pos;
            }
            chunks.push(&stream[start..]);
            prop_assert_eq!(parse_chunks(&chunks), whole);
        }
    }
}
