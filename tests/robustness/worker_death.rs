//! The worker death policy (docs/ARCHITECTURE.md, "Operations"): a worker
//! that panics takes the process with it, instead of leaving the main
//! thread dealing new connections to a thread that will never serve them.
//! The debug binary panics a worker on `get` of `RMEMCACHED_DEBUG_PANIC_KEY`.
use crate::common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

#[cfg(debug_assertions)]
#[test]
fn a_panicking_worker_aborts_the_process() {
    let mut server =
        common::start_server_env(&["-t", "2"], &[("RMEMCACHED_DEBUG_PANIC_KEY", "boom")]);
    let mut s = server.tcp();
    assert_eq!(
        common::request(&mut s, b"get fine\r\n", b"END\r\n"),
        b"END\r\n",
        "other keys are served"
    );
    s.write_all(b"get boom\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the process lives on with a dead worker"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status}");
}
