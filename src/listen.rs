//! Listening sockets: mirrors memcached's `server_sockets`, `server_socket`,
//! `new_socket`, `maximize_sndbuf` and `server_socket_unix`.
//!
//! Addresses are resolved with getaddrinfo and `AI_PASSIVE`, so no `-l`
//! means every local address (IPv4 and IPv6). Each result gets a
//! non-blocking socket with `SO_REUSEADDR`; a UDP socket also gets the
//! largest `SO_SNDBUF` the kernel accepts. An address already in use is
//! skipped; any other bind error is fatal, as in memcached.

use std::fs;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use dns_lookup::{getaddrinfo, AddrInfoHints};
use socket2::{Domain, Protocol as SockProto, SockAddr, Socket, Type};

use crate::settings::Settings;

/// Upper bound of the `SO_SNDBUF` search (memcached's `MAX_SENDBUF_SIZE`).
const MAX_SENDBUF_SIZE: usize = 256 * 1024 * 1024;

/// Which kind of socket to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP listener.
    Tcp,
    /// A UDP socket.
    Udp,
}

/// Every socket the server listens on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// TCP listeners, watched by the main thread, each with whether its
    /// connections speak TLS (`-Z`, unless `-l` gave it as `notls:`).
    pub tcp: Vec<(std::net::TcpListener, bool)>,
    /// UDP sockets, one group per resolved address. A group holds one
    /// socket that every worker clones, or with `-o udp_reuseport` one
    /// `SO_REUSEPORT` socket per worker, between which the kernel spreads
    /// the clients.
    pub udp: Vec<Vec<std::net::UdpSocket>>,
    /// The unix socket listener (`-s`).
    pub unix: Option<std::os::unix::net::UnixListener>,
}

/// One `-l` entry: host (None = any) and port.
fn split_interface(spec: &str, default_port: u16) -> io::Result<(Option<String>, u16)> {
    let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    let mut host: &str = spec;
    let mut port = default_port;
    let mut bracketed = false;
    if let Some(rest) = spec.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| bad(format!("Invalid IPV6 address: \"{spec}\"")))?;
        host = &rest[..end];
        bracketed = true;
        let after = &rest[end + 1..];
        if let Some(p) = after.strip_prefix(':') {
            port = parse_port(p).ok_or_else(|| bad(format!("Invalid port number: \"{p}\"")))?;
        }
    } else if let Some(colon) = spec.find(':') {
        // One colon is host:port; more is a bare IPv6 address.
        if !spec[colon + 1..].contains(':') {
            let p = &spec[colon + 1..];
            port = parse_port(p).ok_or_else(|| bad(format!("Invalid port number: \"{p}\"")))?;
            host = &spec[..colon];
        }
    }
    let host = if !bracketed && host == "*" {
        None
    } else {
        Some(host.to_string())
    };
    Ok((host, port))
}

fn parse_port(s: &str) -> Option<u16> {
    crate::cnum::safe_strtol(s.as_bytes()).map(|p| p as u16)
}

/// Raise `SO_SNDBUF` as far as the kernel allows by binary search, as
/// memcached's `maximize_sndbuf`, and return the value read back.
pub fn maximize_sndbuf(sock: &Socket) -> usize {
    let old = sock.send_buffer_size().unwrap_or(0);
    let (mut min, mut max) = (old, MAX_SENDBUF_SIZE);
    let mut last_good = old;
    while min <= max {
        let avg = min + (max - min) / 2;
        if sock.set_send_buffer_size(avg).is_ok() {
            last_good = avg;
            min = avg + 1;
        } else {
            max = avg - 1;
        }
    }
    let got = sock.send_buffer_size().unwrap_or(last_good);
    log::info!("UDP SO_SNDBUF raised from {old} to {got} (asked for {last_good})");
    got
}

fn new_socket(addr: &SocketAddr, transport: Transport, reuse_port: bool) -> io::Result<Socket> {
    let (ty, proto) = match transport {
        Transport::Tcp => (Type::STREAM, SockProto::TCP),
        Transport::Udp => (Type::DGRAM, SockProto::UDP),
    };
    let sock = Socket::new(Domain::for_address(*addr), ty, Some(proto))?;
    sock.set_nonblocking(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    match transport {
        Transport::Udp => {
            maximize_sndbuf(&sock);
        }
        Transport::Tcp => {
            sock.set_keepalive(true)?;
            sock.set_nodelay(true)?;
        }
    }
    Ok(sock)
}

/// Open every socket for one interface spec (memcached's `server_socket`).
/// Returns how many were bound.
fn server_socket(
    host: Option<&str>,
    port: u16,
    tls: bool,
    transport: Transport,
    settings: &Settings,
    out: &mut Listeners,
    port_file: &mut Option<fs::File>,
) -> io::Result<usize> {
    let hints = AddrInfoHints {
        flags: libc::AI_PASSIVE,
        address: libc::AF_UNSPEC,
        socktype: match transport {
            Transport::Tcp => libc::SOCK_STREAM,
            Transport::Udp => libc::SOCK_DGRAM,
        },
        protocol: 0,
    };
    let port_s = port.to_string();
    let addrs = getaddrinfo(host, Some(&port_s), Some(hints))
        .map_err(|e| io::Error::other(format!("getaddrinfo(): {}", io::Error::from(e))))?;
    let mut bound = 0;
    for ai in addrs {
        let ai = ai?;
        let reuse_port = transport == Transport::Udp && settings.udp_reuseport;
        let sock = match new_socket(&ai.sockaddr, transport, reuse_port) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return Err(e),
            Err(e) => {
                log::warn!("socket for {}: {e}", ai.sockaddr);
                continue;
            }
        };
        if let Err(e) = sock.bind(&SockAddr::from(ai.sockaddr)) {
            if e.kind() == io::ErrorKind::AddrInUse {
                log::warn!("{} already in use, skipped", ai.sockaddr);
                continue;
            }
            return Err(io::Error::new(e.kind(), format!("bind(): {e}")));
        }
        bound += 1;
        let local = sock.local_addr()?.as_socket();
        if let (Some(f), Some(local)) = (port_file.as_mut(), local) {
            let kind = if transport == Transport::Udp {
                "UDP"
            } else {
                "TCP"
            };
            let fam = if local.is_ipv4() { "INET" } else { "INET6" };
            writeln!(f, "{kind} {fam}: {}", local.port())?;
        }
        log::info!("listening on {:?} {}", transport, ai.sockaddr);
        match transport {
            Transport::Tcp => {
                sock.listen(settings.backlog)?;
                out.tcp.push((sock.into(), tls));
            }
            Transport::Udp if reuse_port => {
                // The rest of the group binds to the port the first got.
                let addr = sock.local_addr()?;
                let mut group = vec![sock.into()];
                for _ in 1..settings.num_threads {
                    let s = new_socket(&ai.sockaddr, transport, true)?;
                    s.bind(&addr)?;
                    group.push(s.into());
                }
                out.udp.push(group);
            }
            Transport::Udp => out.udp.push(vec![sock.into()]),
        }
    }
    Ok(bound)
}

/// Open all sockets of one transport (memcached's `server_sockets`): every
/// `-l` entry, or every address when there is none.
fn server_sockets(
    port: u16,
    transport: Transport,
    settings: &Settings,
    out: &mut Listeners,
    port_file: &mut Option<fs::File>,
) -> io::Result<()> {
    let tls = settings.tls.enabled;
    let specs: Vec<(Option<String>, u16, bool)> = match &settings.inter {
        None => vec![(None, port, tls)],
        Some(list) => list
            .split([',', ';'])
            .filter(|s| !s.is_empty())
            .map(|s| {
                // memcached's `notls:` prefix, valid only with -Z.
                let (s, tls) = match s.strip_prefix("notls:") {
                    Some(_) if !tls => {
                        return Err(io::Error::other(
                            "'notls' option is valid only when SSL is enabled",
                        ))
                    }
                    Some(rest) => (rest, false),
                    None => (s, tls),
                };
                split_interface(s, port).map(|(h, p)| (h, p, tls))
            })
            .collect::<io::Result<_>>()?,
    };
    let mut bound = 0;
    for (host, port, tls) in specs {
        bound += server_socket(
            host.as_deref(),
            port,
            tls,
            transport,
            settings,
            out,
            port_file,
        )?;
    }
    if bound == 0 {
        return Err(io::Error::from(io::ErrorKind::AddrInUse));
    }
    Ok(())
}

/// The unix socket of `-s`, with the `-a` mask (memcached's
/// `server_socket_unix`). A stale socket file is removed first.
fn server_socket_unix(
    settings: &Settings,
    path: &std::path::Path,
) -> io::Result<std::os::unix::net::UnixListener> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            let _ = fs::remove_file(path);
        }
    }
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::unix(path)?)?;
    fs::set_permissions(path, fs::Permissions::from_mode(settings.access_mask))?;
    sock.listen(settings.backlog)?;
    Ok(sock.into())
}

/// Open every listening socket the settings ask for. The error message is
/// memcached's (`failed to listen on TCP port ...`).
pub fn open_all(settings: &Settings) -> Result<Listeners, String> {
    let mut out = Listeners::default();
    if let Some(path) = &settings.socket_path {
        let l = server_socket_unix(settings, path)
            .map_err(|e| format!("failed to listen on UNIX socket: {}: {e}", path.display()))?;
        out.unix = Some(l);
        return Ok(out);
    }
    let port_file_name = std::env::var_os("MEMCACHED_PORT_FILENAME");
    let tmp_name = port_file_name.as_ref().map(|n| {
        let mut t = n.clone();
        t.push(".lck");
        t
    });
    let mut port_file = match &tmp_name {
        Some(t) => Some(fs::File::create(t).map_err(|e| format!("{}: {e}", t.to_string_lossy()))?),
        None => None,
    };
    let listen_err = |what: &str, port: i32, e: io::Error| match &settings.inter {
        None => format!("failed to listen on {what} port {port}: {e}"),
        Some(i) => format!("failed to listen on one of interface(s) {i}: {e}"),
    };
    // -1 is memcached's "any free port", which is port 0 to bind(); a TCP
    // port of 0 means no TCP socket at all, as in memcached.
    let bind_port = |p: i32| p.max(0) as u16;
    if settings.port != 0 {
        server_sockets(
            bind_port(settings.port),
            Transport::Tcp,
            settings,
            &mut out,
            &mut port_file,
        )
        .map_err(|e| listen_err("TCP", settings.port, e))?;
    }
    if settings.udp_port != 0 {
        server_sockets(
            bind_port(settings.udp_port),
            Transport::Udp,
            settings,
            &mut out,
            &mut port_file,
        )
        .map_err(|e| listen_err("UDP", settings.udp_port, e))?;
    }
    if let (Some(t), Some(n)) = (tmp_name, port_file_name) {
        drop(port_file);
        fs::rename(&t, &n).map_err(|e| format!("rename port file: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_specs() {
        assert_eq!(
            split_interface("127.0.0.1", 1).unwrap(),
            (Some("127.0.0.1".into()), 1)
        );
        assert_eq!(
            split_interface("127.0.0.1:99", 1).unwrap(),
            (Some("127.0.0.1".into()), 99)
        );
        assert_eq!(
            split_interface("[::1]:99", 1).unwrap(),
            (Some("::1".into()), 99)
        );
        assert_eq!(split_interface("::1", 1).unwrap(), (Some("::1".into()), 1));
        assert_eq!(split_interface("*:5", 1).unwrap(), (None, 5));
        assert!(split_interface("[::1", 1).is_err());
        assert!(split_interface("h:xx", 1).is_err());
    }

    #[test]
    fn sndbuf_is_raised() {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let before = sock.send_buffer_size().unwrap();
        let after = maximize_sndbuf(&sock);
        assert!(after >= before);
    }
}
