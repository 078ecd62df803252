//! The accepted TCP socket, with blocking reads that end when the server stops.
//!
//! `stop()` shuts every socket down to wake the threads blocked reading them. That works on
//! Linux, but not under wine (a shutdown there does not wake a blocked `recv`), where `stop()`
//! then hung. So reads also wake every [`STOP_POLL`] to look at the stop flag, on every OS: one
//! code path, exercised by every idle connection of the Linux test suite too.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use super::state::State;

/// How often a read blocked on a silent client looks at the stop flag.
pub(super) const STOP_POLL: Duration = Duration::from_millis(100);

pub(super) struct Socket {
    sock: TcpStream,
    state: Arc<State>,
}

impl Socket {
    pub fn new(sock: TcpStream, state: Arc<State>) -> io::Result<Socket> {
        sock.set_read_timeout(Some(STOP_POLL))?;
        Ok(Socket { sock, state })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    /// Whether the read timeout in force is our stop poll (and not a short timeout some caller
    /// set on purpose, such as `HttpConn::client_gone`'s, whose expiry it wants to see).
    fn polling(&self) -> bool {
        self.sock.read_timeout().ok().flatten() == Some(STOP_POLL)
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.sock.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && self.polling() =>
                {
                    if self.state.stopping() {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "test server stopping",
                        ));
                    }
                }
                other => return other,
            }
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}
