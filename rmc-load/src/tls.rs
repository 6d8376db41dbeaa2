//! TCP over TLS (`--tls`): a rustls client session over one of the
//! generator's TCP connections, behind the same [`Io`] trait as a plain
//! connection, so that the loops drive either without knowing.
//!
//! The connection's handshake is driven to its end when the connection is
//! opened, before the run's clock starts, so that no handshake falls into
//! the measured part. After that, a send hands the request's bytes to
//! rustls, which encrypts them into one record, and writes the record
//! with the socket's blocking write, as a plain connection writes its
//! request. A receive first takes the plaintext rustls already holds; only
//! when there is none does it read the socket (waiting for the socket's
//! short timeout, or not at all in [`Io::try_recv`]), decrypt what came,
//! and look again. So `try_recv` says `WouldBlock` only when rustls holds
//! nothing readable and the socket is empty: the open loop may then wait
//! in ppoll(2) for the socket, and no decrypted reply is left behind.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::MsgFlags;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use rustls::{ProtocolVersion, SignatureScheme};

use crate::args::Trust;
use crate::sockets::{tcp_socket, Io};

/// How long a connection's handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The client configuration every connection of a run starts from: the
/// ring provider, TLS 1.2 and 1.3, no client certificate, and the trust
/// `--tls-ca` or `--tls-no-verify` asked for.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match trust {
        Trust::Ca(file) => {
            let shown = file.display();
            let mut roots = RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(file).map_err(|e| format!("--tls-ca {shown}: {e}"))?
            {
                let cert = cert.map_err(|e| format!("--tls-ca {shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("--tls-ca {shown}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("--tls-ca {shown}: no certificate in it"));
            }
            builder.with_root_certificates(roots)
        }
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
    };
    Ok(Arc::new(config.with_no_client_auth()))
}

/// `--tls-no-verify`: any certificate for any name, but the handshake's
/// signature is checked as usual (it proves the server holds the key of
/// the certificate it sent, and costs what it costs with a CA).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS session over a TCP connection to the server.
pub struct TlsStream {
    tls: ClientConnection,
    sock: TcpStream,
}

impl TlsStream {
    /// Connect to `host:port` and finish the handshake (the server's
    /// certificate must name `host` when a CA is trusted); the blocking
    /// receive then gives up after `read_timeout`, as on a plain
    /// connection.
    pub fn connect(
        host: IpAddr,
        port: u16,
        read_timeout: Duration,
        config: &Arc<ClientConfig>,
    ) -> io::Result<TlsStream> {
        let sock = tcp_socket(host, port, HANDSHAKE_TIMEOUT)?;
        let tls = ClientConnection::new(config.clone(), ServerName::IpAddress(host.into()))
            .map_err(io::Error::other)?;
        let mut s = TlsStream { tls, sock };
        s.handshake().map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                e.kind(),
                format!("TLS handshake: no reply within {HANDSHAKE_TIMEOUT:?}"),
            ),
            _ => io::Error::new(e.kind(), format!("TLS handshake: {e}")),
        })?;
        s.sock.set_read_timeout(Some(read_timeout))?;
        Ok(s)
    }

    /// Drive the handshake over the blocking socket until it is done on
    /// this side, and send the client's last flight.
    fn handshake(&mut self) -> io::Result<()> {
        while self.tls.is_handshaking() {
            self.tls.complete_io(&mut self.sock)?;
        }
        self.flush_records()
    }

    /// Write every record rustls has ready (blocking).
    fn flush_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Plaintext into `buf`: what rustls holds, else what the socket
    /// brings (waiting for its timeout, or not at all if `dont_wait`).
    /// `Ok(0)` is the end of the stream.
    fn receive(&mut self, buf: &mut [u8], dont_wait: bool) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                // 0: the server's close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: closed without close_notify.
                Err(e) => return Err(e),
            }
            let got = if dont_wait {
                self.tls.read_tls(&mut DontWait(self.sock.as_fd()))?
            } else {
                self.tls.read_tls(&mut self.sock)?
            };
            if got == 0 {
                return Ok(0);
            }
            if let Err(e) = self.tls.process_new_packets() {
                // The alert that tells the server why, if it can go.
                let _ = self.flush_records();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // A reply of the session's own (a key update) goes out now.
            self.flush_records()?;
        }
    }
}

/// A reader that takes what the socket has without waiting for more.
struct DontWait<'a>(BorrowedFd<'a>);

impl Read for DontWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        nix::sys::socket::recv(self.0.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)
    }
}

impl AsFd for TlsStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Io for TlsStream {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            // rustls takes what its buffer limit allows (64 KiB), so a
            // large set goes in several turns.
            let n = self.tls.writer().write(rest)?;
            self.flush_records()?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(buf, false)
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(buf, true)
    }

    fn session(&self) -> Option<String> {
        let version = match self.tls.protocol_version()? {
            ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
            ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
            v => format!("{v:?}"),
        };
        let suite = self.tls.negotiated_cipher_suite()?.suite();
        let group = self
            .tls
            .negotiated_key_exchange_group()
            .map(|g| format!(", {:?}", g.name()))
            .unwrap_or_default();
        Some(format!("{version}, {suite:?}{group}"))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};
    use std::path::PathBuf;
    use std::thread;

    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ServerConfig, ServerConnection, StreamOwned};

    use super::*;

    /// A file of the server's test certificates (tests/tls/).
    fn cert_file(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/tls")
            .join(name)
    }

    type ServerStream = StreamOwned<ServerConnection, std::net::TcpStream>;

    /// A TLS server on `ip` with the test certificate (for 127.0.0.1 and
    /// localhost, signed by ca.pem) that accepts one connection and hands
    /// it to `serve` in a thread of its own; its port, and the thread.
    fn serve_one<T: Send + 'static>(
        ip: Ipv4Addr,
        serve: impl FnOnce(&mut ServerStream) -> T + Send + 'static,
    ) -> (u16, thread::JoinHandle<T>) {
        let chain = vec![CertificateDer::from_pem_file(cert_file("server.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(cert_file("server.key")).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = ServerConnection::new(Arc::new(config)).unwrap();
            let mut s = StreamOwned::new(conn, sock);
            serve(&mut s)
        });
        (port, server)
    }

    fn trust_ca() -> Arc<ClientConfig> {
        client_config(&Trust::Ca(cert_file("ca.pem"))).unwrap()
    }

    /// Read from `s` until `want` bytes came.
    fn read_exactly(s: &mut ServerStream, want: usize) -> Vec<u8> {
        let mut got = vec![0u8; want];
        s.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn a_request_and_its_reply_through_the_session() {
        let (port, server) = serve_one(Ipv4Addr::LOCALHOST, |s| {
            let req = read_exactly(s, 9);
            assert_eq!(req, b"version\r\n");
            // Two records in one go: both must come out of try_recv
            // before it says WouldBlock.
            s.conn.writer().write_all(b"VERSION 1.6.18\r\n").unwrap();
            s.conn.writer().write_all(b"END\r\n").unwrap();
            s.flush().unwrap();
            // Wait for the client's word that it has read both.
            read_exactly(s, 2);
            s.conn.send_close_notify();
            s.flush().unwrap();
        });
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut c = TlsStream::connect(host, port, Duration::from_secs(5), &trust_ca()).unwrap();
        let session = c.session().unwrap();
        assert!(session.starts_with("TLS 1.3, TLS13_"), "{session}");
        c.send(b"version\r\n").unwrap();
        // A small buffer, so that rustls keeps part of what it decrypted.
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        let n = c.recv(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < 21 {
            match c.try_recv(&mut buf) {
                Ok(n) => {
                    assert!(n > 0);
                    got.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "{got:?}");
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"VERSION 1.6.18\r\nEND\r\n");
        assert_eq!(
            c.try_recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        c.send(b"ok").unwrap();
        // The server's close_notify is the end of the stream.
        assert_eq!(c.recv(&mut buf).unwrap(), 0);
        server.join().unwrap();
    }

    #[test]
    fn a_send_larger_than_the_buffer_of_rustls() {
        let len = 300_000;
        let (port, server) = serve_one(Ipv4Addr::LOCALHOST, move |s| read_exactly(s, len));
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut c = TlsStream::connect(host, port, Duration::from_secs(5), &trust_ca()).unwrap();
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        c.send(&bytes).unwrap();
        assert_eq!(server.join().unwrap(), bytes);
    }

    #[test]
    fn the_certificate_is_checked_unless_told_not_to() {
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // Signed by another CA.
        let stranger = client_config(&Trust::Ca(cert_file("stranger.pem"))).unwrap();
        let (port, server) = serve_one(Ipv4Addr::LOCALHOST, |s| {
            let _ = s.conn.complete_io(&mut s.sock);
        });
        let e = TlsStream::connect(host, port, Duration::from_secs(5), &stranger)
            .err()
            .unwrap();
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        server.join().unwrap();
        // The right CA, but an address the certificate does not name.
        let other = Ipv4Addr::new(127, 0, 0, 2);
        let (port, server) = serve_one(other, |s| {
            let _ = s.conn.complete_io(&mut s.sock);
        });
        let e = TlsStream::connect(other.into(), port, Duration::from_secs(5), &trust_ca())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not valid for name"), "{e}");
        server.join().unwrap();
        // --tls-no-verify takes it.
        let any = client_config(&Trust::AnyCertificate).unwrap();
        let (port, server) = serve_one(other, |s| read_exactly(s, 2));
        let mut c = TlsStream::connect(other.into(), port, Duration::from_secs(5), &any).unwrap();
        c.send(b"ok").unwrap();
        assert_eq!(server.join().unwrap(), b"ok");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let e = client_config(&Trust::Ca(cert_file("server.key")))
            .err()
            .unwrap();
        assert!(e.contains("no certificate"), "{e}");
        let e = client_config(&Trust::Ca(cert_file("missing.pem")))
            .err()
            .unwrap();
        assert!(e.starts_with("--tls-ca "), "{e}");
    }
}
