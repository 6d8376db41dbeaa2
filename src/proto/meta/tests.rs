//! Meta commands and their replies, run without sockets.

use super::*;
use crate::server::Server;

fn run(server: &Server, lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sess = Session::default();
    for line in lines {
        let t = Tokens::new(line);
        match process(&server.ctx(), &mut sess, &t, &mut out) {
            Action::Nread(p) => {
                let Completion::Meta(m) = p.done.clone() else {
                    panic!("ms")
                };
                let data = [&b"value"[..], b"\r\n"].concat();
                assert_eq!(p.vlen, data.len());
                complete_mset(&server.ctx(), &m, &p, &data, &mut out);
            }
            Action::Swallow(_) | Action::Continue | Action::Flush => {}
            other => panic!("{other:?}"),
        }
    }
    out
}

#[test]
fn set_get_delete_arith() {
    let server = Server::new(crate::settings::Settings::default());
    let out = run(
        &server,
        &[
            b"ms foo 5 T0 F3 Oab k",
            b"mg foo v s f Oxy k q",
            b"mg missing v q",
            b"mg missing Oz k",
            b"md foo q",
            b"md foo",
            b"ma n N0 J10 v",
            b"ma n D5 MI v",
            b"ma n MD D100",
            b"mn",
            b"mg n v",
            b"mx",
            b"mg foo xx",
            b"mg foo s s",
        ],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HD Oab kfoo\r\n\
         VA 5 s5 f3 Oxy kfoo\r\nvalue\r\n\
         EN Oz kmissing\r\n\
         NF\r\n\
         VA 2\r\n10\r\n\
         VA 2\r\n15\r\n\
         HD\r\n\
         MN\r\n\
         VA 2\r\n0 \r\n\
         ERROR\r\n\
         CLIENT_ERROR invalid flag\r\n\
         CLIENT_ERROR duplicate flag\r\n"
    );
}

#[test]
fn base64_decoding_is_memcacheds() {
    assert_eq!(decode_key(b"YWJj").as_deref(), Some(&b"abc"[..]));
    // Characters outside the alphabet are skipped.
    assert_eq!(decode_key(b"c121_YQ==").unwrap().len(), 4);
    assert_eq!(decode_key(b"!!!!"), None);
    assert_eq!(decode_key(b"YWJ"), None);
    // Decoding stops after the first padded group.
    assert_eq!(decode_key(b"YQ==YWJj").as_deref(), Some(&b"a"[..]));
}

#[test]
fn base64_keys_round_trip() {
    let server = Server::new(crate::settings::Settings::default());
    // "a b" is not a valid text key, but is as base64 ("YSBi").
    let out = run(&server, &[b"ms YSBi 5 b k", b"mg YSBi b k v", b"me YSBi b"]);
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.starts_with("HD kYSBi b\r\nVA 5 kYSBi b\r\nvalue\r\nME YSBi exp=-1 "),
        "{s}"
    );
}
