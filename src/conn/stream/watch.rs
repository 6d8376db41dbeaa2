//! A `watch` connection (memcached's `conn_watch`, which its logger
//! thread serves): registering it with the logger, then each turn
//! dropping what the client sends and writing the lines its watcher's
//! buffer collected.

use std::sync::atomic::Ordering;

use super::StreamConn;
use crate::conn::common::{interrupted, would_block, ByteStream, Common, Outcome};
use crate::conn_state::ConnState;
use crate::logger::{AddError, CloseReason, LOGGER};
use crate::server::Server;

/// The most writes a watcher makes in one run before letting the worker's
/// other connections have a turn.
const WATCH_WRITES: usize = 8;

/// The most reads a watcher makes in one run (what it reads is dropped).
const WATCH_READS: usize = 16;

impl StreamConn {
    /// `watch`: register the connection as a watcher; from now on it
    /// writes the lines its buffer collects (the first is `OK`).
    #[cold]
    #[inline(never)]
    pub(super) fn start_watch(&mut self, c: &mut Common, server: &Server, kinds: u32) {
        let limit = server.settings.watcher_logbuf_size;
        let added = match &self.wake {
            Some((waker, token)) => LOGGER.add_watcher(kinds, limit, waker.clone(), *token),
            // Only a worker's connections can be woken.
            None => {
                self.wbuf
                    .extend_from_slice(b"WATCHER_FAILED failed to add log watcher\r\n");
                c.set_state(ConnState::Mwrite);
                return;
            }
        };
        match added {
            Ok(h) => {
                self.watch = Some(h);
                // Nothing is unsent (the command checked): the buffer
                // starts again, to be swapped with the watcher's.
                self.wbuf = Vec::new();
                self.wpos = 0;
                self.drained = false;
                c.set_state(ConnState::Watch);
            }
            Err(AddError::TooMany) => {
                self.wbuf
                    .extend_from_slice(b"WATCHER_TOO_MANY log watcher limit reached\r\n");
                c.set_state(ConnState::Mwrite);
            }
        }
    }

    /// A watcher's turn (memcached's logger thread polls its watchers):
    /// drop whatever the client sends, seeing whether it has gone, then
    /// write the lines collected since the last turn. A stop closes it.
    #[cold]
    #[inline(never)]
    pub(super) fn watch<S: ByteStream>(
        &mut self,
        c: &mut Common,
        sock: &mut S,
        server: &Server,
    ) -> Outcome {
        if c.draining() {
            c.close_for(CloseReason::Shutdown);
            return Outcome::Close;
        }
        if !self.drained {
            let mut scratch = [0u8; 4096];
            let mut reads = 0;
            loop {
                match sock.read(&mut scratch) {
                    Ok(0) => {
                        c.close_for(CloseReason::Normal);
                        return Outcome::Close;
                    }
                    Ok(_) if reads < WATCH_READS => reads += 1,
                    // More to drop: come back after the others' turn.
                    Ok(_) => return Outcome::Yield,
                    Err(e) if would_block(&e) => break,
                    Err(e) if interrupted(&e) => {}
                    Err(e) => {
                        log::debug!("watcher read error: {e}");
                        c.set_state(ConnState::Closing);
                        return Outcome::Close;
                    }
                }
            }
            self.drained = true;
        }
        let Some(h) = &self.watch else {
            c.set_state(ConnState::Closing);
            return Outcome::Close;
        };
        for _ in 0..WATCH_WRITES {
            if self.wpos >= self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
                if !h.take(&mut self.wbuf) {
                    return match sock.flush() {
                        Ok(()) => Outcome::Idle,
                        Err(e) if would_block(&e) => Outcome::Idle,
                        Err(e) => {
                            log::debug!("watcher write error: {e}");
                            c.set_state(ConnState::Closing);
                            Outcome::Close
                        }
                    };
                }
            }
            match sock.write(&self.wbuf[self.wpos..]) {
                Ok(n) => {
                    self.wpos += n;
                    server
                        .stats
                        .bytes_written
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if would_block(&e) => return Outcome::Idle,
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    log::debug!("watcher write error: {e}");
                    c.set_state(ConnState::Closing);
                    return Outcome::Close;
                }
            }
        }
        Outcome::Yield
    }
}
