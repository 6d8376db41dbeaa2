//! `stats conns` lists the same sockets, in the same shape, as memcached
//! 1.6.18's: listeners, each worker's UDP socket and every connection, with
//! the connection sending a value in `conn_nread` and the asking one in
//! `conn_parse_cmd`. Descriptor numbers and ports differ between the two
//! servers, so each socket's block is compared with those masked.
use crate::common;

use std::io::Write;
use std::time::Duration;

use crate::common::{request, start_unix_server, start_with};

const MEMCACHED: &str = "/usr/bin/memcached";

/// The blocks of `stats conns`, one per socket, without the descriptor,
/// with port numbers masked as `P` and seconds as `S`, sorted.
fn blocks(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8(reply.to_vec()).unwrap();
    let mut by_fd: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for line in text.lines().filter(|l| l.starts_with("STAT ")) {
        let rest = &line[5..];
        let (fd, stat) = rest.split_once(':').unwrap();
        let mut masked = stat.to_string();
        if masked.starts_with("secs_since_last_cmd ") {
            // Each server's clock ticks on its own second.
            masked = "secs_since_last_cmd S".to_string();
        }
        if let Some(i) = masked.rfind(':') {
            if masked[i + 1..].bytes().all(|b| b.is_ascii_digit()) && masked.contains(" tcp")
                || masked.contains(" udp")
            {
                masked.truncate(i);
                masked.push_str(":P");
            }
        }
        by_fd.entry(fd.parse().unwrap()).or_default().push(masked);
    }
    let mut v: Vec<String> = by_fd.into_values().map(|b| b.join("|")).collect();
    v.sort();
    v
}

fn snapshot(server: &common::Server) -> Vec<String> {
    let mut setter = server.tcp();
    setter.write_all(b"set foo 0 0 6\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut asker = server.tcp();
    blocks(&request(&mut asker, b"stats conns\r\n", b"END\r\n"))
}

#[test]
fn tcp_and_udp_sockets_like_memcached() {
    let flags = ["-t", "2"];
    let mc = start_with(MEMCACHED, &flags);
    let rm = common::start_server(&flags);
    let (mc_blocks, rm_blocks) = (snapshot(&mc), snapshot(&rm));
    assert_eq!(rm_blocks, mc_blocks);
    assert!(rm_blocks.iter().any(|b| b.contains("state conn_listening")));
    assert!(rm_blocks
        .iter()
        .any(|b| b.starts_with("UDP UDP|addr udp:127.0.0.1:P")));
    assert!(rm_blocks.iter().any(|b| b.contains("state conn_nread")));
}

#[test]
fn unix_socket_listener_and_clients() {
    let rm = start_unix_server(&[]);
    let path = rm.socket.clone().unwrap();
    let mut setter = rm.unix();
    setter.write_all(b"set foo 0 0 6\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut asker = rm.unix();
    let reply = String::from_utf8(request(&mut asker, b"stats conns\r\n", b"END\r\n")).unwrap();
    let listen = format!("addr unix:{}\r\n", path.display());
    assert!(reply.contains(&listen), "{reply}");
    // A connected unix client has no address; memcached prints this.
    assert!(reply.contains(":addr ?:<AF 0>\r\n"), "{reply}");
    let listen_addr = format!(":listen_addr unix:{}\r\n", path.display());
    assert_eq!(reply.matches(&listen_addr).count(), 2, "{reply}");
    assert!(reply.contains(":state conn_nread\r\n"), "{reply}");
    assert!(reply.contains(":state conn_parse_cmd\r\n"), "{reply}");
    assert!(reply.contains(":state conn_listening\r\n"), "{reply}");
}
