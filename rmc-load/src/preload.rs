//! Preload: set every key before the run, so that gets hit. Over UDP the
//! sets go a window at a time and those without a reply are sent again;
//! over TCP (or TLS) they are pipelined a window at a time.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmemcached::udp::UDP_HEADER_SIZE;
use rustls::ClientConfig;

use crate::args::Config;
use crate::reassembly::{reply_header, request_header, Reassembly};
use crate::reply::{parse_reply, udp_reply, Expect, Reply};
use crate::sockets::{tcp_socket, udp_socket, Io};
use crate::tls::TlsStream;
use crate::workload::{set_request, value_bytes};

/// Set every key over UDP, a window at a time, resending sets that got no
/// reply.
pub fn preload_udp(cfg: &Config) -> Result<(), String> {
    const WINDOW: usize = 64;
    let sock = udp_socket(cfg.host, cfg.port, Duration::from_millis(20))
        .map_err(|e| format!("preload: UDP socket: {e}"))?;
    let refused = || format!("preload: nothing listens on UDP port {}", cfg.port);
    let value = value_bytes(cfg.value_size);
    let mut todo: Vec<u32> = (0..cfg.keys).collect();
    let mut next_id: u16 = 0;
    let mut buf = vec![0u8; 65536];
    for _round in 0..8 {
        if todo.is_empty() {
            return Ok(());
        }
        let mut again = Vec::new();
        for chunk in todo.chunks(WINDOW) {
            let mut waiting: Vec<(u16, u32, Reassembly)> = Vec::new();
            for &k in chunk {
                let id = next_id;
                next_id = next_id.wrapping_add(1);
                let mut d = request_header(id).to_vec();
                set_request(&mut d, &cfg.prefix, k, &value);
                match sock.send(&d) {
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(refused()),
                    _ => {}
                }
                waiting.push((id, k, Reassembly::default()));
            }
            let deadline = Instant::now() + Duration::from_millis(500);
            while !waiting.is_empty() && Instant::now() < deadline {
                let n = match sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(refused()),
                    Err(_) => continue,
                };
                let Some(h) = reply_header(&buf[..n]) else {
                    continue;
                };
                let Some(i) = waiting.iter().position(|w| w.0 == h.request_id) else {
                    continue;
                };
                let (_, key, asm) = &mut waiting[i];
                if asm
                    .push(h.sequence, h.total, &buf[UDP_HEADER_SIZE..n])
                    .is_err()
                    || !asm.settled()
                {
                    continue;
                }
                match udp_reply(Expect::Storage, asm.data()) {
                    Reply::Incomplete => continue,
                    Reply::Done { .. } => {
                        waiting.swap_remove(i);
                    }
                    _ => {
                        return Err(format!(
                            "preload: set {}{}: {:?}",
                            cfg.prefix,
                            key,
                            String::from_utf8_lossy(asm.data()).trim_end()
                        ));
                    }
                }
            }
            if waiting.len() == chunk.len() {
                return Err(format!(
                    "preload: no reply to {} sets over UDP port {}",
                    chunk.len(),
                    cfg.port
                ));
            }
            again.extend(waiting.iter().map(|w| w.1));
        }
        todo = again;
    }
    if todo.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "preload: {} sets over UDP got no reply",
            todo.len()
        ))
    }
}

/// Set every key over TCP on `port`, over TLS if `tls` is given,
/// pipelined a window at a time.
pub fn preload_tcp(cfg: &Config, port: u16, tls: Option<&Arc<ClientConfig>>) -> Result<(), String> {
    let timeout = Duration::from_secs(5);
    let failed = |e| format!("preload: connect to TCP port {port}: {e}");
    match tls {
        None => preload_stream(cfg, tcp_socket(cfg.host, port, timeout).map_err(failed)?),
        Some(config) => preload_stream(
            cfg,
            TlsStream::connect(cfg.host, port, timeout, config).map_err(failed)?,
        ),
    }
}

/// Set every key over the connection `s`, a window at a time.
fn preload_stream<I: Io>(cfg: &Config, mut s: I) -> Result<(), String> {
    const WINDOW: u32 = 100;
    let value = value_bytes(cfg.value_size);
    let mut req = Vec::new();
    let mut rbuf = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut k = 0;
    while k < cfg.keys {
        let n = WINDOW.min(cfg.keys - k);
        req.clear();
        for i in k..k + n {
            set_request(&mut req, &cfg.prefix, i, &value);
        }
        s.send(&req).map_err(|e| format!("preload: write: {e}"))?;
        let mut answered = 0;
        while answered < n {
            match parse_reply(Expect::Storage, &rbuf) {
                Reply::Done { len, .. } => {
                    rbuf.drain(..len);
                    answered += 1;
                }
                Reply::Incomplete => {
                    let got = s
                        .recv(&mut buf)
                        .map_err(|e| format!("preload: read: {e}"))?;
                    if got == 0 {
                        return Err("preload: the server closed the connection".into());
                    }
                    rbuf.extend_from_slice(&buf[..got]);
                }
                _ => {
                    let line = rbuf.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    return Err(format!(
                        "preload: set: {:?}",
                        String::from_utf8_lossy(line).trim_end()
                    ));
                }
            }
        }
        k += n;
    }
    Ok(())
}
