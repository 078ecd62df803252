//! The stdout writer: the only code that writes to stdout. One JSON-RPC frame per line.
//!
//! Answers to client requests are written only if their id is still in the in-flight table, which
//! makes "exactly one answer per request" a property of this one place. A closed stdout (the client
//! went away) ends the bridge gracefully.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread;

use super::pending::Pending;
use super::Event;
use crate::jsonrpc::Id;
use crate::transport::budget::Held;

/// One frame for stdout.
#[derive(Debug)]
pub enum Out {
    /// A frame to write. When it answers a client request, `answers` holds the id and the frame is
    /// written only if that id is still in flight.
    Frame {
        frame: Vec<u8>,
        answers: Option<Id>,
        /// Its room in the memory budget, given back once written.
        held: Held,
    },
    /// Flush everything queued so far, then acknowledge (used at shutdown).
    Flush(SyncSender<()>),
}

/// Spawn the writer thread. `events` learns about a closed stdout.
pub fn spawn(
    rx: Receiver<Out>,
    pending: Arc<Pending>,
    events: SyncSender<Event>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("stdout".into()).spawn(move || {
        let stdout = io::stdout();
        let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        if let Err(e) = write_loop(&rx, &pending, &mut out) {
            log::debug!("stdout closed ({e}): stopping");
            let _ = events.send(Event::Stop(super::StopReason::StdoutClosed));
        }
    })
}

fn write_loop(rx: &Receiver<Out>, pending: &Pending, out: &mut impl Write) -> io::Result<()> {
    while let Ok(msg) = rx.recv() {
        handle(msg, pending, out)?;
        // Drain whatever else is queued before paying for a flush.
        while let Ok(msg) = rx.try_recv() {
            handle(msg, pending, out)?;
        }
        out.flush()?;
    }
    out.flush()
}

fn handle(msg: Out, pending: &Pending, out: &mut impl Write) -> io::Result<()> {
    match msg {
        Out::Frame {
            frame,
            answers,
            held: _held,
        } => {
            if let Some(id) = &answers {
                if !pending.take(id) {
                    log::debug!("dropping a second or late answer for id {}", id.to_json());
                    return Ok(());
                }
            }
            write_frame(out, frame)
        }
        Out::Flush(ack) => {
            out.flush()?;
            let _ = ack.send(());
            Ok(())
        }
    }
}

/// Write one frame as one line. A raw CR/LF inside a JSON text can only be insignificant
/// whitespace (inside strings they must be escaped), so folding them to spaces is safe.
fn write_frame(out: &mut impl Write, mut frame: Vec<u8>) -> io::Result<()> {
    for b in frame.iter_mut() {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.write_all(&frame)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_one_line_and_answers_are_deduplicated() {
        let pending = Pending::new();
        pending.insert(Id::Num(1));
        let mut out = Vec::new();
        let reply = br#"{"jsonrpc":"2.0","id":1,
"result":{}}"#
            .to_vec();
        handle(
            Out::Frame {
                frame: reply.clone(),
                answers: Some(Id::Num(1)),
                held: Held::none(),
            },
            &pending,
            &mut out,
        )
        .unwrap();
        handle(
            Out::Frame {
                frame: reply,
                answers: Some(Id::Num(1)),
                held: Held::none(),
            },
            &pending,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"{\"jsonrpc\":\"2.0\",\"id\":1, \"result\":{}}\n");
    }
}
