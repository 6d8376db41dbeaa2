//! No lost updates: many clients doing `incr`, `cas` loops and `append` on
//! the same keys at once end with exactly the values a serial run gives.
use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;

const THREADS: usize = 6;
const ROUNDS: usize = 300;

/// A line-oriented client over one TCP connection.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn new(server: &common::Server) -> Client {
        let w = server.tcp();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }

    fn cmd(&mut self, req: &str) -> String {
        self.w.write_all(req.as_bytes()).unwrap();
        self.line()
    }

    /// `gets key`: (value, cas).
    fn gets(&mut self, key: &str) -> (String, u64) {
        let head = self.cmd(&format!("gets {key}\r\n"));
        let cas = head.split_whitespace().nth(4).unwrap().parse().unwrap();
        let value = self.line().trim_end().to_string();
        assert_eq!(self.line(), "END\r\n");
        (value, cas)
    }
}

fn run_threads(server: &common::Server, f: impl Fn(usize, &mut Client) + Sync) {
    thread::scope(|s| {
        for t in 0..THREADS {
            let f = &f;
            s.spawn(move || f(t, &mut Client::new(server)));
        }
    });
}

#[test]
fn concurrent_incr_cas_and_append_lose_nothing() {
    let server = common::start_server(&["-t", "4"]);
    let mut c = Client::new(&server);
    assert_eq!(c.cmd("set n 0 0 1\r\n0\r\n"), "STORED\r\n");
    assert_eq!(c.cmd("set c 0 0 1\r\n0\r\n"), "STORED\r\n");
    assert_eq!(c.cmd("set a 0 0 0\r\n\r\n"), "STORED\r\n");

    run_threads(&server, |t, cl| {
        for i in 0..ROUNDS {
            // incr: atomic in the server.
            let r = cl.cmd("incr n 1\r\n");
            assert!(r.trim_end().parse::<u64>().is_ok(), "incr said {r:?}");
            // cas loop: read, add one, write back only if unchanged.
            loop {
                let (v, cas) = cl.gets("c");
                let next = (v.parse::<u64>().unwrap() + 1).to_string();
                let r = cl.cmd(&format!("cas c 0 0 {} {cas}\r\n{next}\r\n", next.len()));
                match r.as_str() {
                    "STORED\r\n" => break,
                    "EXISTS\r\n" => continue,
                    other => panic!("cas said {other:?}"),
                }
            }
            // append: a token unique to this thread and round.
            let token = format!("<{t}.{i}>");
            let r = cl.cmd(&format!("append a 0 0 {}\r\n{token}\r\n", token.len()));
            assert_eq!(r, "STORED\r\n");
        }
    });

    let total = THREADS * ROUNDS;
    assert_eq!(c.gets("n").0, total.to_string(), "incr lost updates");
    assert_eq!(c.gets("c").0, total.to_string(), "cas lost updates");
    let appended = c.gets("a").0;
    for t in 0..THREADS {
        for i in 0..ROUNDS {
            let token = format!("<{t}.{i}>");
            assert_eq!(
                appended.matches(&token).count(),
                1,
                "append lost or doubled {token}"
            );
        }
    }
    let expected_len: usize = (0..THREADS)
        .flat_map(|t| (0..ROUNDS).map(move |i| format!("<{t}.{i}>").len()))
        .sum();
    assert_eq!(appended.len(), expected_len);
}
