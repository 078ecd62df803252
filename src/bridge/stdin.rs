//! The stdin reader: splits the client's byte stream into lines (one JSON-RPC frame each), bounded
//! in size, and hands them to the dispatcher in order. EOF is the MCP stdio shutdown signal.

use std::io::{self, BufRead};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;

use super::Input;

/// Spawn the reader thread over the process's stdin.
/// `closed` is raised at EOF, so that a dispatcher blocked on a request can notice it.
pub fn spawn(
    tx: Sender<Input>,
    max_line: usize,
    closed: Arc<AtomicBool>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = io::stdin();
        let mut reader = io::BufReader::with_capacity(64 * 1024, stdin.lock());
        read_lines(&mut reader, max_line, &tx);
        closed.store(true, Ordering::SeqCst);
    })
}

/// Read lines until EOF (or until the receiver is gone), sending each non-empty one.
pub fn read_lines(reader: &mut impl BufRead, max_line: usize, tx: &Sender<Input>) {
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
            if tx.send(event).is_err() {
                return;
            }
        }
    }
    if let Some(last) = framer.finish() {
        let _ = tx.send(last);
    }
    let _ = tx.send(Input::Eof);
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

    /// Feed bytes; complete lines (without the newline, CR stripped) come out as `Input::Line`, an
    /// oversized line as one `Input::TooLong`. Blank lines are skipped.
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
                    self.line = Vec::new();
                    out.push(Input::TooLong);
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
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            out.push(Input::Line(line));
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
                Input::Line(l) => String::from_utf8_lossy(&l).into_owned(),
                Input::TooLong => "<too long>".into(),
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
                        Input::Line(l) => Some(l),
                        _ => None,
                    })
                    .collect();
                prop_assert_eq!(got, reference(&input, max));
            }
        }
    }
}
