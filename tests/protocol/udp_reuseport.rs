//! `-o udp_reuseport`: one `SO_REUSEPORT` UDP socket per worker, all on the
//! same port, every one of them answering.
use crate::common;

/// How many UDP sockets of process `pid` are bound to `port` on 127.0.0.1
/// (/proc/net/udp, matched to the process's descriptors by inode, since
/// another test's server may share a port picked at the same moment).
fn udp_sockets_on(pid: u32, port: u16) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.get(1) == Some(&local.as_str()))
        .filter(|f| f.get(9).is_some_and(|i| inodes.iter().any(|x| x == i)))
        .count()
}

#[test]
fn one_socket_per_worker_and_all_answer() {
    let server = common::start_server(&["-t", "4", "-o", "udp_reuseport"]);
    assert_eq!(udp_sockets_on(server.child.id(), server.udp_port), 4);
    let mut tcp = server.tcp();
    common::request(&mut tcp, b"set k 0 0 2\r\nhi\r\n", b"\r\n");
    // Many source ports spread over the sockets; each must be answered.
    for id in 0..64u16 {
        let udp = server.udp();
        assert_eq!(
            common::udp_request(&udp, id, b"get k\r\n"),
            b"VALUE k 0 2\r\nhi\r\nEND\r\n"
        );
    }
}

#[test]
fn without_the_option_one_socket_is_shared() {
    let server = common::start_server(&["-t", "4"]);
    assert_eq!(udp_sockets_on(server.child.id(), server.udp_port), 1);
}
