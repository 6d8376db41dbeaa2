//! The log lines, in memcached's formats (`logger.c`'s `_logger_parse_*`
//! functions): `ts=<secs>.<usecs> gid=<n> type=<event> ...`, one `\n`
//! each, keys URI-encoded as memcached's `uriencode` does.

use std::io::Write as _;
use std::net::SocketAddr;

/// The longest line: memcached renders into a 4 KiB scratch buffer; a key
/// of 250 bytes encodes to at most 750, so every line here fits.
pub const LINE_MAX: usize = 4096;

/// A line being built on the stack (no allocation per event).
pub struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    /// An empty line.
    pub fn new() -> Line {
        Line {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn put(&mut self, b: &[u8]) {
        let n = b.len().min(LINE_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }

    fn fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let mut rest = &mut self.buf[self.len..];
        let before = rest.len();
        // A line that does not fit is cut short (it cannot happen: see
        // `LINE_MAX`).
        let _ = rest.write_fmt(args);
        self.len += before - rest.len();
    }

    /// `ts=<secs>.<usecs> gid=<gid> `: memcached prints the microseconds
    /// with `%d`, without zero padding.
    pub fn head(&mut self, secs: u64, usecs: u32, gid: u64) {
        self.fmt(format_args!("ts={secs}.{usecs} gid={gid} "));
    }

    /// A key, URI-encoded: letters, digits and `-._~` stay, every other
    /// byte becomes `%XX`.
    pub fn key(&mut self, key: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for &b in key {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                self.put(&[b]);
            } else {
                self.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
    }

    /// Text as it is.
    pub fn text(&mut self, s: &str) {
        self.put(s.as_bytes());
    }

    /// Formatted text.
    pub fn args(&mut self, args: std::fmt::Arguments<'_>) {
        self.fmt(args);
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

/// What a lookup found (memcached's `was_found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No such key.
    NotFound,
    /// A live item.
    Found,
    /// An item hidden by `flush_all` (taken away by this lookup).
    Flushed,
    /// An expired item (taken away by this lookup).
    Expired,
}

impl Found {
    /// memcached's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Found::NotFound => "not_found",
            Found::Found => "found",
            Found::Flushed => "flushed",
            Found::Expired => "expired",
        }
    }
}

/// A connection's transport, as memcached names it in connection events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket.
    Local,
    /// TCP (TLS included).
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    /// memcached's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Why a connection closed (memcached's `enum close_reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseReason {
    /// A protocol or I/O error, or anything not listed below (memcached's
    /// default).
    #[default]
    Error,
    /// The client closed, or sent `quit`.
    Normal,
    /// `-o idle_timeout`.
    IdleTimeout,
    /// `shutdown`.
    Shutdown,
}

impl CloseReason {
    /// memcached's word for it.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Error => "error",
            CloseReason::Normal => "normal",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// `rip=<ip> rport=<port>`: memcached prints `unix` and 0 for a unix
/// socket, or for an address it could not learn.
pub fn peer(line: &mut Line, addr: Option<SocketAddr>) {
    match addr {
        Some(a) => line.args(format_args!("rip={} rport={}", a.ip(), a.port())),
        None => line.text("rip=unix rport=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uri_encoded_as_memcached_does() {
        let mut l = Line::new();
        l.key(b"a-Z_9.~ #/\xff");
        assert_eq!(l.as_bytes(), b"a-Z_9.~%20%23%2F%FF");
        let mut l = Line::new();
        l.key(&[b'#'; 250]);
        assert_eq!(l.as_bytes().len(), 750);
    }

    #[test]
    fn microseconds_are_not_padded() {
        let mut l = Line::new();
        l.head(17, 5, 3);
        assert_eq!(l.as_bytes(), b"ts=17.5 gid=3 ");
    }

    #[test]
    fn a_line_never_overflows() {
        let mut l = Line::new();
        for _ in 0..10 {
            l.key(&[0u8; 250]);
        }
        assert_eq!(l.as_bytes().len(), LINE_MAX);
    }
}
