//! A TLS session over a non-blocking TCP socket, as a byte stream the
//! stream machine reads and writes like a socket: memcached's `ssl_read`
//! and `ssl_write` (`tls.c`), on rustls.
//!
//! The edge-triggered rules hold through it. A read takes plaintext that
//! rustls already holds first, and only then reads the socket, so bytes
//! decrypted earlier are never left waiting for an edge that will not
//! come; and a read that returns less than asked does not prove the
//! socket empty (a record ends where it ends), so the machine reads on
//! until `WouldBlock` ([`ByteStream::short_read_drains`]). What rustls
//! has encrypted but the socket did not take is sent by the next read,
//! write or flush; the machine flushes before it calls a reply written.
//!
//! What one connection may hold is bounded: rustls keeps at most one
//! record coming in, and the plaintext it buffers going out is limited to
//! `ssl_wbuf_size`.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::common::ByteStream;
use crate::tls::TlsContext;

/// One TLS connection.
#[derive(Debug)]
pub struct TlsStream {
    tls: ServerConnection,
    sock: TcpStream,
    ctx: Arc<TlsContext>,
}

impl TlsStream {
    /// A server session over an accepted socket, from the context's
    /// current configuration.
    pub fn new(sock: TcpStream, ctx: Arc<TlsContext>) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(ctx.config()).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(ctx.wbuf_size()));
        Ok(TlsStream { tls, sock, ctx })
    }

    /// The socket, for registration and addresses.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// The socket, for registration.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Tell the peer the session ends (close_notify), sending what the
    /// socket takes now; nothing waits for it.
    pub fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let _ = self.push();
    }

    /// Send the records rustls has ready, until done or `WouldBlock`.
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Send what is ready, leaving the rest for writability.
    fn push_some(&mut self) -> io::Result<()> {
        match self.push() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // A handshake message or an alert may be waiting to go out.
            self.push_some()?;
            match self.tls.reader().read(buf) {
                // 0: the peer's close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the peer closed without close_notify.
                Err(e) => return Err(e),
            }
            if self.tls.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            let handshaking = self.tls.is_handshaking();
            if let Err(e) = self.tls.process_new_packets() {
                if handshaking {
                    self.ctx.handshake_errors.fetch_add(1, Ordering::Relaxed);
                }
                // The alert that tells the peer why.
                let _ = self.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut n = self.tls.writer().write(buf)?;
        match self.push() {
            Ok(()) if n == 0 => n = self.tls.writer().write(buf)?,
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => {}
            Err(e) => return Err(e),
        }
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}

impl ByteStream for TlsStream {
    fn short_read_drains(&self) -> bool {
        false
    }
}
