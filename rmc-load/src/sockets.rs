//! The sockets: connected UDP sockets and TCP connections to the server,
//! behind one small [`Io`] trait so that the loops drive any of them (and
//! a TLS session over a TCP connection, [`crate::tls::TlsStream`]).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::sys::socket::MsgFlags;

/// Receive buffer asked for on UDP sockets, so that bursts of reply
/// datagrams are not dropped by the generator itself.
const UDP_RCVBUF: usize = 4 << 20;

/// A connected socket. Its file descriptor is what the open loop waits
/// on: when [`Io::try_recv`] says `WouldBlock`, nothing is readable until
/// the descriptor is.
pub trait Io: AsFd + Send {
    /// Send `bytes`: one datagram (UDP), or all of them (TCP).
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Receive with the socket's short timeout; `Ok(0)` on TCP is the end
    /// of the stream.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Receive what is there without waiting (`WouldBlock` if nothing).
    fn try_recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.as_fd().as_raw_fd();
        nix::sys::socket::recv(fd, buf, MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)
    }
    /// The TLS session's version, cipher suite and key exchange, for the
    /// report; `None` without TLS.
    fn session(&self) -> Option<String> {
        None
    }
}

impl Io for UdpSocket {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        UdpSocket::send(self, bytes).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        UdpSocket::recv(self, buf)
    }
}

impl Io for TcpStream {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }
}

/// The local address to bind: the loopback of the server's family.
fn local_for(host: IpAddr) -> SocketAddr {
    SocketAddr::new(host, 0)
}

/// A UDP socket connected to the server, its receive buffer enlarged,
/// whose blocking receive gives up after `read_timeout`.
pub fn udp_socket(host: IpAddr, port: u16, read_timeout: Duration) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let server = SocketAddr::new(host, port);
    let s = Socket::new(
        Domain::for_address(server),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Best effort: the kernel caps it at its own maximum.
    let _ = s.set_recv_buffer_size(UDP_RCVBUF);
    s.bind(&local_for(host).into())?;
    s.connect(&server.into())?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(read_timeout))?;
    Ok(s)
}

/// A TCP connection to the server (`TCP_NODELAY`), whose blocking receive
/// gives up after `read_timeout`.
pub fn tcp_socket(host: IpAddr, port: u16, read_timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::new(host, port), Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(read_timeout))?;
    Ok(s)
}
