//! The stdin reader: splits the client's byte stream into lines (one JSON-RPC frame each), bounded
//! in size, and hands them to the dispatcher in order. EOF is the MCP stdio shutdown signal.

use std::io::{self, BufRead};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread;

use super::Event as Input;
use crate::transport::budget::{Budget, Held};

/// How much of an oversized line is kept, to read its id from.
const TOO_LONG_HEAD: usize = 4096;
/// Windows tools (PowerShell pipes, some editors) start a UTF-8 stream with a byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Spawn the reader thread over the process's stdin.
pub fn spawn(
    tx: SyncSender<Input>,
    max_line: usize,
    budget: Arc<Budget>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = io::stdin();
        let mut reader = io::BufReader::with_capacity(64 * 1024, stdin.lock());
        read_lines(&mut reader, max_line, &tx, &budget);
    })
}

/// Read lines until EOF (or until the receiver is gone), sending each non-empty one. Each line
/// holds its room in the memory budget until it has been sent on; a spent budget or a full
/// channel blocks here, and so stops reading stdin: the client feels the back-pressure.
pub fn read_lines(
    reader: &mut impl BufRead,
    max_line: usize,
    tx: &SyncSender<Input>,
    budget: &Arc<Budget>,
) {
    let mut framer = LineFramer::new(max_line);
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("cannot read stdin: {e}");
                break;
            }
        };
        let len = chunk.len();
        let mut events = Vec::new();
        framer.feed(chunk, &mut events);
        reader.consume(len);
        for event in events {
            if !send(tx, budget, event) {
                return;
            }
        }
    }
    if let Some(last) = framer.finish() {
        send(tx, budget, last);
    }
    let _ = tx.send(Input::Eof);
}

/// Reserve a line's room, then hand it on; false when the bridge is stopping.
fn send(tx: &SyncSender<Input>, budget: &Arc<Budget>, event: Input) -> bool {
    let event = match event {
        Input::Line(line, _) => match budget.line(line.capacity()) {
            Some(held) => Input::Line(line, held),
            None => return false,
        },
        other => other,
    };
    tx.send(event).is_ok()
}

/// Pure line splitter with a size bound, kept apart from I/O so it can be tested and fuzzed.
pub struct LineFramer {
    line: Vec<u8>,
    max_line: usize,
    /// Inside a line that went over the bound: skip until its end.
    skipping: bool,
}

impl LineFramer {
    pub fn new(max_line: usize) -> Self {
        Self {
            line: Vec::new(),
            max_line,
            skipping: false,
        }
    }

    /// Feed bytes; complete lines (without the newline, CR stripped, a leading BOM skipped) come
    /// out as `Input::Line`, an oversized line as one `Input::TooLong` with its first bytes.
    /// Blank lines are skipped.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Input>) {
        while !chunk.is_empty() {
            let (part, rest, ended) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &[][..], false),
            };
            chunk = rest;
            if !self.skipping {
                if self.line.len() + part.len() > self.max_line {
                    self.skipping = true;
                    let mut head = std::mem::take(&mut self.line);
                    let wanted = TOO_LONG_HEAD.saturating_sub(head.len()).min(part.len());
                    head.extend_from_slice(&part[..wanted]);
                    head.truncate(TOO_LONG_HEAD);
                    out.push(Input::TooLong(head));
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            if ended {
                if !self.skipping {
                    self.emit(out);
                }
                self.skipping = false;
            }
        }
    }

    /// The last line if the stream ended without a newline.
    pub fn finish(&mut self) -> Option<Input> {
        let mut out = Vec::new();
        if !self.skipping {
            self.emit(&mut out);
        }
        out.pop()
    }

    fn emit(&mut self, out: &mut Vec<Input>) {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            out.push(Input::Line(line, Held::none()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize, split: usize) -> Vec<String> {
        let mut f = LineFramer::new(max);
        let mut out = Vec::new();
        for part in input.chunks(split.max(1)) {
            f.feed(part, &mut out);
        }
        out.extend(f.finish());
        out.into_iter()
            .map(|i| match i {
                Input::Line(l, _) => String::from_utf8_lossy(&l).into_owned(),
                Input::TooLong(_) => "<too long>".into(),
                _ => "<other>".into(),
            })
            .collect()
    }

    #[test]
    fn splits_lines_at_any_chunk_boundary() {
        let input = b"{\"a\":1}\r\n\n   \n{\"b\":2}\n{\"c\":3}";
        for split in 1..input.len() {
            assert_eq!(
                lines(input, 100, split),
                ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"],
                "split {split}"
            );
        }
    }

    #[test]
    fn oversized_line_is_reported_once_and_skipped() {
        let input = b"0123456789ABCDEF\n{}\n";
        for split in 1..input.len() {
            assert_eq!(
                lines(input, 8, split),
                ["<too long>", "{}"],
                "split {split}"
            );
        }
    }

    #[test]
    fn an_oversized_line_keeps_its_start_for_the_id() {
        let mut f = LineFramer::new(16);
        let mut out = Vec::new();
        f.feed(
            b"{\"id\":99,\"method\":\"x\",\"params\":\"long\"}\n",
            &mut out,
        );
        match &out[..] {
            [Input::TooLong(head)] => assert!(head.starts_with(b"{\"id\":99,")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        assert_eq!(
            lines(b"\xEF\xBB\xBF{\"a\":1}\r\n\xEF\xBB\xBF\n{}", 100, 100),
            ["{\"a\":1}", "{}"]
        );
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        /// The reference: split on LF, strip one CR, drop blank lines, report long ones.
        fn reference(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
            let mut out = Vec::new();
            let parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            for part in parts {
                if part.len() > max {
                    out.push(None);
                    continue;
                }
                let line = part.strip_suffix(b"\r").unwrap_or(part);
                let line = line.strip_prefix(BOM).unwrap_or(line);
                if line.iter().any(|b| !b.is_ascii_whitespace()) {
                    out.push(Some(line.to_vec()));
                }
            }
            out
        }

        proptest! {
            #[test]
            fn any_bytes_any_chunking_match_the_reference_and_stay_bounded(
                input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), any::<u8>()], 0..400),
                cuts in proptest::collection::vec(1usize..50, 0..20),
            ) {
                let max = 32;
                let mut framer = LineFramer::new(max);
                let mut out = Vec::new();
                let mut rest = &input[..];
                for cut in cuts {
                    let (chunk, tail) = rest.split_at(cut.min(rest.len()));
                    framer.feed(chunk, &mut out);
                    prop_assert!(framer.line.len() <= max);
                    rest = tail;
                }
                framer.feed(rest, &mut out);
                out.extend(framer.finish());
                let got: Vec<Option<Vec<u8>>> = out
                    .into_iter()
                    .map(|i| match i {
                        Input::Line(l, _) => Some(l),
                        _ => None,
                    })
                    .collect();
                prop_assert_eq!(got, reference(&input, max));
            }
        }
    }
}
