//! Replies: where one ends, and what it says. A reply is parsed from the
//! start of the bytes received, so that over TCP the next pipelined reply
//! is left for the next request, and over UDP a payload must be exactly
//! one reply.

/// The reply a request expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `VALUE ...` items, then `END`.
    Retrieval,
    /// One line: `STORED`, `NOT_STORED`, `EXISTS` or `NOT_FOUND`.
    Storage,
}

/// How far the bytes received form a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Not whole yet.
    Incomplete,
    /// A whole reply of `len` bytes, with `values` items for a retrieval.
    Done { len: usize, values: u32 },
    /// A whole error line (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`).
    Error { len: usize },
    /// Bytes that cannot be the reply to the request.
    Malformed,
}

/// Where the first `\r\n` of `b` starts.
fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Whether `line` is one of memcached's error lines.
fn is_error_line(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

/// Parse one reply from the start of `buf`: a whole reply is reported with
/// its length, so that what follows (the next pipelined reply over TCP, or
/// stray bytes over UDP) is left alone.
pub fn parse_reply(expect: Expect, buf: &[u8]) -> Reply {
    let mut pos = 0;
    let mut values = 0;
    loop {
        let Some(e) = find_crlf(&buf[pos..]) else {
            return Reply::Incomplete;
        };
        let line = &buf[pos..pos + e];
        let after = pos + e + 2;
        if is_error_line(line) {
            return Reply::Error { len: after };
        }
        match expect {
            Expect::Storage => {
                return match line {
                    b"STORED" | b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => {
                        Reply::Done { len: after, values }
                    }
                    _ => Reply::Malformed,
                };
            }
            Expect::Retrieval => {
                if line == b"END" {
                    return Reply::Done { len: after, values };
                }
                let Some(rest) = line.strip_prefix(b"VALUE ") else {
                    return Reply::Malformed;
                };
                let fields: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
                if !(3..=4).contains(&fields.len()) {
                    return Reply::Malformed;
                }
                let Some(bytes) = std::str::from_utf8(fields[2])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    return Reply::Malformed;
                };
                let end = after + bytes + 2;
                if buf.len() < end {
                    return Reply::Incomplete;
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Reply::Malformed;
                }
                values += 1;
                pos = end;
            }
        }
    }
}

/// The whole of a UDP reply: the payload must be exactly one reply.
pub fn udp_reply(expect: Expect, payload: &[u8]) -> Reply {
    match parse_reply(expect, payload) {
        Reply::Done { len, .. } | Reply::Error { len } if len != payload.len() => Reply::Malformed,
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_replies() {
        let r = Expect::Retrieval;
        assert_eq!(parse_reply(r, b""), Reply::Incomplete);
        assert_eq!(parse_reply(r, b"EN"), Reply::Incomplete);
        assert_eq!(
            parse_reply(r, b"END\r\n"),
            Reply::Done { len: 5, values: 0 }
        );
        let one = b"VALUE k 0 5\r\nhello\r\nEND\r\n";
        assert_eq!(
            parse_reply(r, one),
            Reply::Done {
                len: one.len(),
                values: 1
            }
        );
        // Cut anywhere short of the end: incomplete, never done.
        for cut in 0..one.len() {
            assert_eq!(
                parse_reply(r, &one[..cut]),
                Reply::Incomplete,
                "cut at {cut}"
            );
        }
        // Data that looks like the end is data.
        let tricky = b"VALUE k 0 5\r\nEND\r\n\r\nEND\r\n";
        assert_eq!(
            parse_reply(r, tricky),
            Reply::Done {
                len: tricky.len(),
                values: 1
            }
        );
        assert_eq!(parse_reply(r, &tricky[..18]), Reply::Incomplete);
        // With a cas field, several values, and what follows left alone.
        let two = b"VALUE a 1 1 7\r\nx\r\nVALUE b 0 2 8\r\nyy\r\nEND\r\nSTORED\r\n";
        assert_eq!(
            parse_reply(r, two),
            Reply::Done {
                len: two.len() - 8,
                values: 2
            }
        );
        assert_eq!(udp_reply(r, two), Reply::Malformed);
        assert_eq!(
            parse_reply(r, b"SERVER_ERROR out of memory\r\n"),
            Reply::Error { len: 28 }
        );
        assert_eq!(parse_reply(r, b"ERROR\r\n"), Reply::Error { len: 7 });
        assert_eq!(parse_reply(r, b"STORED\r\n"), Reply::Malformed);
        assert_eq!(parse_reply(r, b"VALUE k 0 x\r\n"), Reply::Malformed);
        assert_eq!(
            parse_reply(r, b"VALUE k 0 1\r\nab\r\nEND\r\n"),
            Reply::Malformed
        );
    }

    #[test]
    fn storage_replies() {
        let s = Expect::Storage;
        for line in ["STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"] {
            let b = format!("{line}\r\n");
            assert_eq!(
                parse_reply(s, b.as_bytes()),
                Reply::Done {
                    len: b.len(),
                    values: 0
                }
            );
            assert_eq!(
                parse_reply(s, &b.as_bytes()[..b.len() - 1]),
                Reply::Incomplete
            );
        }
        assert_eq!(
            parse_reply(s, b"CLIENT_ERROR bad data chunk\r\n"),
            Reply::Error { len: 29 }
        );
        assert_eq!(parse_reply(s, b"END\r\n"), Reply::Malformed);
        assert_eq!(udp_reply(s, b"STORED\r\nSTORED\r\n"), Reply::Malformed);
        assert_eq!(
            udp_reply(s, b"STORED\r\n"),
            Reply::Done { len: 8, values: 0 }
        );
    }
}
