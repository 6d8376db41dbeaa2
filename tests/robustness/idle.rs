//! `-o idle_timeout=N` closes connections that send nothing for longer
//! than N seconds, and spares busy ones.
use crate::common;

use std::io::Read;
use std::time::{Duration, Instant};

#[test]
fn idle_connection_is_closed_busy_one_is_not() {
    let server = common::start_server(&["-o", "idle_timeout=1"]);
    let mut idle = server.tcp();
    let mut busy = server.tcp();
    idle.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let started = Instant::now();
    // Keep one connection busy while the other one idles.
    let mut closed_after = None;
    while started.elapsed() < Duration::from_secs(6) {
        assert_eq!(
            common::request(&mut busy, b"version\r\n", b"\r\n"),
            b"VERSION 1.6.18\r\n"
        );
        idle.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 16];
        match idle.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(n) => panic!("unexpected bytes {:?}", &buf[..n]),
            Err(_) => {} // timed out: still open
        }
    }
    let after = closed_after.expect("idle connection was never closed");
    assert!(
        after >= Duration::from_secs(1),
        "closed too early: {after:?}"
    );
    assert_eq!(
        common::request(&mut busy, b"version\r\n", b"\r\n"),
        b"VERSION 1.6.18\r\n"
    );
}
