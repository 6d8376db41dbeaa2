//! Binary requests and replies, run without sockets.

use super::packet::RES_MAGIC;
use super::*;
use crate::server::Server;

fn request(opcode: u8, ext: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    let mut b = vec![REQ_MAGIC, opcode];
    b.extend_from_slice(&(key.len() as u16).to_be_bytes());
    b.push(ext.len() as u8);
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&((ext.len() + key.len() + value.len()) as u32).to_be_bytes());
    b.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
    b.extend_from_slice(&cas.to_be_bytes());
    b.extend_from_slice(ext);
    b.extend_from_slice(key);
    b.extend_from_slice(value);
    b
}

/// Run requests as a connection would, collecting the replies.
fn run(server: &Server, mut input: &[u8]) -> Vec<u8> {
    let mut sess = Session::default();
    let mut out = Vec::new();
    loop {
        match process(&server.ctx(), &mut sess, input, &mut out) {
            Parsed::NeedMore => return out,
            Parsed::Done(n, action) => {
                input = &input[n..];
                match action {
                    Action::Nread(p) => {
                        let vlen = p.vlen;
                        let data = &input[..vlen];
                        crate::proto::complete::complete_nread(
                            &server.ctx(),
                            &mut sess,
                            p,
                            data,
                            &mut out,
                        );
                        input = &input[vlen..];
                    }
                    Action::Swallow(n) => input = &input[n.min(input.len())..],
                    Action::Close | Action::Quit => return out,
                    _ => {}
                }
            }
        }
    }
}

/// opcode, status, key, value, CAS of each reply.
type Reply = (u8, u16, Vec<u8>, Vec<u8>, u64);

fn replies(mut out: &[u8]) -> Vec<Reply> {
    let mut v = Vec::new();
    while out.len() >= HEADER_LEN {
        assert_eq!(out[0], RES_MAGIC);
        let h = Header::parse(out);
        let status = u16::from_be_bytes([out[6], out[7]]);
        assert_eq!(h.opaque, 0xdead_beef);
        let body = &out[HEADER_LEN..HEADER_LEN + h.bodylen as usize];
        let key = body[h.extlen as usize..h.extlen as usize + h.keylen as usize].to_vec();
        let value = body[h.extlen as usize + h.keylen as usize..].to_vec();
        v.push((h.opcode, status, key, value, h.cas));
        out = &out[HEADER_LEN + h.bodylen as usize..];
    }
    assert!(out.is_empty());
    v
}

fn set_ext(flags: u32, exp: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exp.to_be_bytes()].concat()
}

#[test]
fn set_get_and_quiet_opcodes() {
    let server = Server::new(crate::settings::Settings::default());
    let mut input = request(op::SET, &set_ext(7, 0), b"k", b"hello", 0);
    input.extend(request(op::GETK, &[], b"k", b"", 0));
    input.extend(request(op::GETQ, &[], b"missing", b"", 0));
    input.extend(request(op::SETQ, &set_ext(0, 0), b"q", b"v", 0));
    input.extend(request(op::ADD, &set_ext(0, 0), b"k", b"x", 0));
    input.extend(request(op::NOOP, &[], b"", b"", 0));
    let r = replies(&run(&server, &input));
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!((r[0].0, r[0].1), (op::SET, 0));
    let cas = r[0].4;
    assert!(cas != 0);
    assert_eq!(r[1], (op::GETK, 0, b"k".to_vec(), b"hello".to_vec(), cas));
    assert_eq!(
        (r[2].0, r[2].1, &r[2].3[..]),
        (op::ADD, 2, &b"Data exists for key."[..])
    );
    assert_eq!((r[3].0, r[3].1), (op::NOOP, 0));
}

#[test]
fn incr_with_initial_and_errors() {
    let server = Server::new(crate::settings::Settings::default());
    let ext = |d: u64, i: u64, e: u32| -> Vec<u8> {
        [&d.to_be_bytes()[..], &i.to_be_bytes(), &e.to_be_bytes()].concat()
    };
    let mut input = request(op::INCREMENT, &ext(1, 10, 0), b"n", b"", 0);
    input.extend(request(op::INCREMENT, &ext(5, 10, 0), b"n", b"", 0));
    input.extend(request(op::DECREMENT, &ext(100, 0, 0), b"n", b"", 0));
    input.extend(request(
        op::INCREMENT,
        &ext(1, 0, u32::MAX),
        b"none",
        b"",
        0,
    ));
    input.extend(request(0x55, &[], b"", b"", 0));
    let r = replies(&run(&server, &input));
    assert_eq!(r[0].3, 10u64.to_be_bytes());
    assert_eq!(r[1].3, 15u64.to_be_bytes());
    assert_eq!(r[2].3, 0u64.to_be_bytes());
    assert_eq!((r[3].1, &r[3].3[..]), (1, &b"Not found"[..]));
    assert_eq!(
        (r[4].0, r[4].1, &r[4].3[..]),
        (0x55, 0x81, &b"Unknown command"[..])
    );
}

#[test]
fn partial_requests_need_more() {
    let server = Server::new(crate::settings::Settings::default());
    let mut sess = Session::default();
    let req = request(op::GET, &[], b"key", b"", 0);
    for cut in [0, 10, 24, 26] {
        assert_eq!(
            process(&server.ctx(), &mut sess, &req[..cut], &mut Vec::new()),
            Parsed::NeedMore
        );
    }
}

#[test]
fn bad_lengths_are_refused_and_close() {
    let server = Server::new(crate::settings::Settings::default());
    let mut sess = Session::default();
    let mut out = Vec::new();
    // A get with extras.
    let req = request(op::GET, &[1, 2, 3, 4], b"key", b"", 0);
    assert_eq!(
        process(&server.ctx(), &mut sess, &req, &mut out),
        Parsed::Done(req.len(), Action::Quit)
    );
    assert_eq!(replies(&out)[0].1, Status::Einval as u16);
    // A key longer than the body.
    let mut req = request(op::GET, &[], b"key", b"", 0);
    req[8..12].copy_from_slice(&1u32.to_be_bytes());
    out.clear();
    assert!(matches!(
        process(&server.ctx(), &mut sess, &req, &mut out),
        Parsed::Done(_, Action::Quit)
    ));
    assert_eq!(replies(&out)[0].1, Status::UnknownCommand as u16);
    // Not a request at all.
    let mut req = request(op::GET, &[], b"key", b"", 0);
    req[0] = 0x81;
    assert_eq!(
        process(&server.ctx(), &mut sess, &req, &mut Vec::new()),
        Parsed::Done(0, Action::Close)
    );
}

fn sasl_server() -> Server {
    let settings = crate::settings::Settings {
        sasl: true,
        ..Default::default()
    };
    // No library: every exchange fails, as memcached's does without a
    // SASL connection. The exchanges themselves are tested against the
    // real library in tests/protocol/sasl.rs.
    Server::new(settings)
}

#[test]
fn sasl_gates_commands_until_authenticated() {
    let server = sasl_server();
    // VERSION runs before authentication.
    let r = replies(&run(&server, &request(op::VERSION, &[], b"", b"", 0)));
    assert_eq!((r[0].0, r[0].1), (op::VERSION, 0));
    // Anything else, quiet or not, is refused and the connection closes.
    for opcode in [op::GET, op::GETQ, op::NOOP, op::STAT, op::SET, op::FLUSH] {
        let mut sess = Session::default();
        let mut out = Vec::new();
        let req = request(opcode, &[], b"", b"", 0);
        assert_eq!(
            process(&server.ctx(), &mut sess, &req, &mut out),
            Parsed::Done(HEADER_LEN, Action::Quit),
            "opcode {opcode:#x}"
        );
        assert_eq!(
            replies(&out),
            vec![(opcode, 0x20, vec![], b"Auth failure.".to_vec(), 0)]
        );
    }
    // Once authenticated, commands run.
    let mut sess = Session::default();
    sess.sasl.authenticated = true;
    let mut out = Vec::new();
    let req = request(op::NOOP, &[], b"", b"", 0);
    assert_eq!(
        process(&server.ctx(), &mut sess, &req, &mut out),
        Parsed::Done(HEADER_LEN, Action::Flush)
    );
}

#[test]
fn sasl_commands_without_the_library_fail() {
    let server = sasl_server();
    let mut input = request(op::SASL_LIST_MECHS, &[], b"", b"", 0);
    // A mechanism name over 32 bytes: invalid, its data swallowed.
    input.extend(request(op::SASL_AUTH, &[], &[b'X'; 33], b"data", 0));
    input.extend(request(op::SASL_AUTH, &[], b"PLAIN", b"\0u\0p", 0));
    input.extend(request(op::SASL_STEP, &[], b"PLAIN", b"", 0));
    let r = replies(&run(&server, &input));
    let statuses: Vec<_> = r.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        statuses,
        [
            (op::SASL_LIST_MECHS, 0x20),
            (op::SASL_AUTH, 0x04),
            (op::SASL_AUTH, 0x20),
            (op::SASL_STEP, 0x20),
        ]
    );
    // Two exchanges ended, both failed; the bad mechanism is no exchange.
    let s = &server.stats;
    assert_eq!(s.auth_cmds.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(s.auth_errors.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[test]
fn sasl_opcodes_are_unknown_without_s() {
    let server = Server::new(crate::settings::Settings::default());
    let mut input = request(op::SASL_LIST_MECHS, &[], b"", b"", 0);
    input.extend(request(op::SASL_AUTH, &[], b"PLAIN", b"\0u\0p", 0));
    input.extend(request(op::GET, &[], b"k", b"", 0));
    let r = replies(&run(&server, &input));
    let statuses: Vec<_> = r.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        statuses,
        [
            (op::SASL_LIST_MECHS, 0x81),
            (op::SASL_AUTH, 0x81),
            (op::GET, 0x01)
        ]
    );
}
