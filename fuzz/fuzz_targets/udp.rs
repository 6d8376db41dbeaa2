//! The UDP path: the input is split into datagrams at `\xfe\xfd`, each sent
//! as it is (8-byte frame header included) from a loopback client to a
//! real server's UDP connection, which takes them in `recvmmsg` batches,
//! runs their commands (text, meta or binary, chosen per datagram) and
//! sends framed replies that `run_udp` checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmemcached::settings::Protocol;
use rmemcached_fuzz::{datagrams, run_udp, server};

fuzz_target!(|data: &[u8]| {
    let server = server(Protocol::Auto);
    run_udp(&server, &datagrams(data));
});
