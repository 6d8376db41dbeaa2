//! Garbage in, memcached's errors out: random bytes and mangled commands
//! over TCP and UDP never crash the server, never hang it, and never touch
//! another client's data.
use crate::common;

use crate::common::Rng;

use std::io::{Read, Write};
use std::time::Duration;

const PIECES: &[&[u8]] = &[
    b"get ",
    b"gets ",
    b"gat ",
    b"set ",
    b"add ",
    b"cas ",
    b"append ",
    b"incr ",
    b"decr ",
    b"delete ",
    b"touch ",
    b"flush_all ",
    b"stats ",
    b"verbosity ",
    b"slabs ",
    b"noreply",
    b"4294967296",
    b"-1",
    b"18446744073709551616",
    b"0",
    b"10",
    b"1000000",
    b" ",
    b"  ",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\x80",
    b"HTTP/1.1",
    b"key",
    b"detail",
    b"automove",
    b"cache_memlimit ",
];

/// One request: a mix of protocol words and raw random bytes.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.index(40) + 1 {
        if rng.index(4) == 0 {
            for _ in 0..rng.index(64) {
                out.push(rng.next() as u8);
            }
        } else {
            out.extend_from_slice(PIECES[rng.index(PIECES.len())]);
        }
    }
    out
}

#[test]
fn random_input_never_hurts_the_server_or_other_clients() {
    // -F: a random flush_all would be a legitimate way to lose the witness.
    let mut server = common::start_server(&["-t", "2", "-F"]);
    let mut witness = server.tcp();
    let stored = common::request(&mut witness, b"set witness 7 0 9\r\nsurvivor!\r\n", b"\r\n");
    assert_eq!(stored, b"STORED\r\n");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let mut c = server.tcp();
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        // Writes may fail once the server has hung up on us: that is fine.
        let _ = c.write_all(&garbage(&mut rng));
        let mut sink = [0u8; 65536];
        let _ = c.read(&mut sink);
    }
    let udp = server.udp();
    for id in 0..300u16 {
        let mut d = common::udp_header(id, rng.index(3) as u16, rng.index(3) as u16).to_vec();
        d.extend_from_slice(&garbage(&mut rng));
        let _ = udp.send(&d);
    }
    std::thread::sleep(Duration::from_millis(200));

    // The server is alive and answers over both transports, and the
    // witness's data (a key the garbage never names) is untouched.
    assert!(server.child.try_wait().unwrap().is_none(), "server exited");
    let reply = common::request(&mut witness, b"get witness\r\n", b"END\r\n");
    assert_eq!(
        common::show(&reply),
        common::show(b"VALUE witness 7 9\r\nsurvivor!\r\nEND\r\n")
    );
    assert!(server_alive(&server));
    let udp = server.udp();
    assert_eq!(
        common::udp_request(&udp, 1, b"version\r\n"),
        b"VERSION 1.6.18\r\n"
    );
}

fn server_alive(server: &common::Server) -> bool {
    let mut c = server.tcp();
    common::request(&mut c, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
}
