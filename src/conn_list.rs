//! `stats conns`: every open socket, listening or connected, by file
//! descriptor, with its addresses, state and the seconds since its last
//! command (memcached's `process_stats_conns`, which walks its `conns`
//! array).
//!
//! Connections live in their worker's slab, out of reach of the worker that
//! runs `stats conns`. So each one also has an entry here: the addresses,
//! fixed at registration, and the state and last command time, which the
//! owning worker stores as they change (a relaxed atomic store each).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::conn_state::ConnState;

/// What `stats conns` shows of one socket.
#[derive(Debug)]
pub struct ConnEntry {
    /// A UDP socket (memcached prints an extra `UDP` line for those).
    udp: bool,
    /// The `addr` line: the peer of a connection, the local address of a
    /// listening or UDP socket.
    addr: String,
    /// The `listen_addr` line (connections only): the local address.
    listen_addr: Option<String>,
    /// The state, as [`ConnState::index`].
    state: AtomicU8,
    /// Relative time of the last command.
    last_cmd: AtomicU32,
}

impl ConnEntry {
    /// Record a state change.
    pub fn set_state(&self, state: ConnState) {
        self.state.store(state.index(), Ordering::Relaxed);
    }

    /// Record the time of a command.
    pub fn set_last_cmd(&self, now: u32) {
        self.last_cmd.store(now, Ordering::Relaxed);
    }
}

/// memcached's text for an address: `tcp:1.2.3.4:5`, `udp6:[::1]:5`.
pub fn inet_text(udp: bool, a: SocketAddr) -> String {
    let proto = match (udp, a.is_ipv6()) {
        (false, false) => "tcp",
        (false, true) => "tcp6",
        (true, false) => "udp",
        (true, true) => "udp6",
    };
    match a {
        SocketAddr::V4(v4) => format!("{proto}:{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("{proto}:[{}]:{}", v6.ip(), v6.port()),
    }
}

/// memcached's text for a unix socket path; a connected unix client has
/// no address of its own, which memcached shows as `?:<AF 0>`.
pub fn unix_text(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => format!("unix:{}", p.display()),
        None => "?:<AF 0>".to_string(),
    }
}

/// Every open socket's entry, by descriptor.
#[derive(Debug, Default)]
pub struct ConnList {
    entries: Mutex<BTreeMap<RawFd, Arc<ConnEntry>>>,
}

impl ConnList {
    /// Add a socket; the entry is for its owner to update.
    pub fn add(
        &self,
        fd: RawFd,
        udp: bool,
        addr: String,
        listen_addr: Option<String>,
        state: ConnState,
        now: u32,
    ) -> Arc<ConnEntry> {
        let e = Arc::new(ConnEntry {
            udp,
            addr,
            listen_addr,
            state: AtomicU8::new(state.index()),
            last_cmd: AtomicU32::new(now),
        });
        self.lock().insert(fd, e.clone());
        e
    }

    /// Forget a socket that is being closed.
    pub fn remove(&self, fd: RawFd) {
        self.lock().remove(&fd);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RawFd, Arc<ConnEntry>>> {
        crate::sync::lock(&self.entries)
    }

    /// The `stats conns` lines (without `END`), at relative time `now`.
    pub fn write(&self, now: u32, out: &mut Vec<u8>) {
        use std::io::Write as _;
        for (fd, e) in self.lock().iter() {
            if e.udp {
                let _ = write!(out, "STAT {fd}:UDP UDP\r\n");
            }
            let _ = write!(out, "STAT {fd}:addr {}\r\n", e.addr);
            if let Some(l) = &e.listen_addr {
                let _ = write!(out, "STAT {fd}:listen_addr {l}\r\n");
            }
            let state = ConnState::from_index(e.state.load(Ordering::Relaxed));
            let _ = write!(out, "STAT {fd}:state {}\r\n", state.name());
            let secs = now.wrapping_sub(e.last_cmd.load(Ordering::Relaxed)) as i32;
            let _ = write!(out, "STAT {fd}:secs_since_last_cmd {secs}\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_memcached_prints_them() {
        assert_eq!(
            inet_text(false, "127.0.0.1:11211".parse().unwrap()),
            "tcp:127.0.0.1:11211"
        );
        assert_eq!(inet_text(true, "[::1]:5".parse().unwrap()), "udp6:[::1]:5");
        assert_eq!(unix_text(None), "?:<AF 0>");
    }

    #[test]
    fn lists_by_descriptor_with_live_state() {
        let list = ConnList::default();
        let a = list.add(
            9,
            false,
            "tcp:1.2.3.4:5".into(),
            Some("tcp:0.0.0.0:6".into()),
            ConnState::NewCmd,
            10,
        );
        list.add(7, true, "udp:0.0.0.0:6".into(), None, ConnState::Read, 0);
        a.set_state(ConnState::Nread);
        let mut out = Vec::new();
        list.write(12, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "STAT 7:UDP UDP\r\nSTAT 7:addr udp:0.0.0.0:6\r\nSTAT 7:state conn_read\r\n\
             STAT 7:secs_since_last_cmd 12\r\nSTAT 9:addr tcp:1.2.3.4:5\r\n\
             STAT 9:listen_addr tcp:0.0.0.0:6\r\nSTAT 9:state conn_nread\r\n\
             STAT 9:secs_since_last_cmd 2\r\n"
        );
        list.remove(9);
        let mut out = Vec::new();
        list.write(12, &mut out);
        assert!(!String::from_utf8(out).unwrap().contains("STAT 9:"));
    }
}
