//! The meta commands over a stream connection: as the text target, but a
//! line starting with a byte 0 to 5 starts with `mg`, `ms`, `md`, `ma`,
//! `mn` or `me` (see `expand_meta`), so mutations stay meta commands.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmemcached::settings::Protocol;
use rmemcached_fuzz::{check_text_replies, closed_early, expand_meta, pieces, run_stream, server};

fuzz_target!(|data: &[u8]| {
    let (piece, stream) = pieces(data);
    let stream = expand_meta(stream);
    let server = server(Protocol::Ascii);
    let run = run_stream(&server, &stream, piece);
    if !closed_early(&server) {
        check_text_replies(&run.replies);
    }
});
