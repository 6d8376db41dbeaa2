//! The ASCII protocol over a stream connection: arbitrary bytes, written
//! whole or in small pieces (see `pieces`), through the real connection
//! state machine of a real server.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmemcached::settings::Protocol;
use rmemcached_fuzz::{check_text_replies, closed_early, pieces, run_stream, server};

fuzz_target!(|data: &[u8]| {
    let (piece, stream) = pieces(data);
    let server = server(Protocol::Ascii);
    let run = run_stream(&server, stream, piece);
    if !closed_early(&server) {
        check_text_replies(&run.replies);
    }
});
