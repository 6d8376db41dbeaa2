//! The binary starts, answers over TCP and UDP, and reports its port.
use crate::common;

#[test]
fn answers_over_tcp_and_udp() {
    let server = common::start_server(&[]);
    let mut tcp = server.tcp();
    let reply = common::request(&mut tcp, b"set k 0 0 1\r\nv\r\nget k\r\n", b"END\r\n");
    assert_eq!(reply, b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n");
    let udp = server.udp();
    assert_eq!(
        common::udp_request(&udp, 7, b"get k\r\n"),
        b"VALUE k 0 1\r\nv\r\nEND\r\n"
    );
}
