//! The command line: `--help`'s text, the options, and the checks that a
//! run can be made of them (a set must fit in one datagram over UDP, the
//! host must be loopback, ...).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lexopt::{Arg, Parser, ValueExt};
use rmemcached::udp::UDP_HEADER_SIZE;

use crate::workload::set_request_len;

/// Largest UDP payload a socket can carry over IPv4.
const UDP_MAX_DATAGRAM: usize = 65507;
/// Most sockets (each with one or two threads).
const MAX_SOCKETS: u32 = 64;
/// Most requests in flight per socket in closed loop (UDP ids are `u16`s,
/// and expired ids rest for a timeout before reuse).
const MAX_OUTSTANDING: u32 = 16384;

/// What `--help` prints.
pub const HELP: &str = "\
rmc-load: load generator for memcached-compatible servers on loopback
(memcached's ASCII protocol over UDP or TCP)

Usage: rmc-load (--udp PORT | --tcp PORT [--tls (--tls-ca FILE | --tls-no-verify)])
                [options]

  --udp PORT           send over UDP to PORT (memcached's 8-byte frame)
  --tcp PORT           send over TCP to PORT
  --tls                TCP over TLS (1.2 or 1.3, rustls), as to a server
                       started with -Z; the preload too. Each connection's
                       handshake is done before the measured run starts
  --tls-ca FILE        with --tls: trust the CA certificate(s) in PEM FILE,
                       and check that the server's certificate names the
                       --host address
  --tls-no-verify      with --tls: accept any server certificate (the
                       handshake's signature is still checked, so the work
                       per handshake is the same); one of --tls-ca and
                       --tls-no-verify is required
  --host ADDR          server address; loopback only (127.0.0.0/8, ::1)
                       [127.0.0.1]
  --mode MODE          get | multiget | set | mixed (90% get, 10% set) [get]
  --keys N             key space: PREFIX0 .. PREFIX<N-1> [1000]
  --value-size B       bytes per value, preloaded and set [100]
  --multiget-keys K    keys per multiget request [10]
  --rate R             requests/s over all sockets, sent on schedule (open
                       loop); 0 = closed loop, as fast as replies come [0]
  --outstanding M      closed loop: requests in flight per socket [16]
  --sockets S          sockets (connections), 1..64; a thread each in
                       closed loop, one thread for all in open loop [1]
  --duration SECS      seconds of sending (fractions allowed) [5]
  --timeout MS         a request without a complete reply this long after
                       its send is lost [1000]
  --preload-tcp PORT   preload the keys over TCP on PORT instead of over the
                       load's own transport
  --no-preload         do not set the keys before the run
  --prefix STR         key prefix [rmcload:]
  --seed N             random seed [from the clock]
  --json               also print a one-line JSON summary (the last line)
  -h, --help           print this text

Latency runs from the scheduled send time (open loop) or the send time
(closed loop) to the complete reply. A UDP reply is complete when the
datagrams of its request id, in one message or in several (memcached sends
one per key of a multi-get, then END), concatenate to a whole reply; a
lost datagram makes its request lost (in memcached's framing a key's
message lost whole cannot be told from a miss, and counts as one).
";

/// What the requests are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One key per `get`.
    Get,
    /// `--multiget-keys` consecutive keys per `get`.
    MultiGet,
    /// `set` of one key.
    Set,
    /// 90% `get`, 10% `set`, drawn per request.
    Mixed,
}

impl Mode {
    /// The name `--mode` takes, and the JSON summary shows.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Get => "get",
            Mode::MultiGet => "multiget",
            Mode::Set => "set",
            Mode::Mixed => "mixed",
        }
    }
}

/// The transport of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// memcached's UDP frame, many requests in flight per socket.
    Udp,
    /// A TCP connection per socket, requests pipelined.
    Tcp,
}

impl Proto {
    /// The name the reports show.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// What a TLS client trusts (`--tls-ca` or `--tls-no-verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The CA certificates in this PEM file; the server's certificate
    /// must name the `--host` address.
    Ca(PathBuf),
    /// Any certificate: a benchmark on loopback need not know the CA.
    AnyCertificate,
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--udp` or `--tcp`.
    pub proto: Proto,
    /// The server's port for the load.
    pub port: u16,
    /// `--host`, a loopback address.
    pub host: IpAddr,
    /// `--mode`.
    pub mode: Mode,
    /// `--keys`: the key space.
    pub keys: u32,
    /// `--value-size`.
    pub value_size: usize,
    /// `--multiget-keys`.
    pub multiget_keys: u32,
    /// `--rate`: requests/s over all sockets; 0 is closed loop.
    pub rate: f64,
    /// `--outstanding`: requests in flight per socket in closed loop.
    pub outstanding: u32,
    /// `--sockets`.
    pub sockets: u32,
    /// `--duration`: how long requests are sent.
    pub duration: Duration,
    /// `--timeout`: how long a request waits for its reply.
    pub timeout: Duration,
    /// Whether the keys are set before the run (not `--no-preload`).
    pub preload: bool,
    /// `--preload-tcp`.
    pub preload_tcp: Option<u16>,
    /// `--prefix`.
    pub prefix: String,
    /// `--seed`.
    pub seed: u64,
    /// `--json`.
    pub json: bool,
    /// `--tls`, with what it trusts: TCP over TLS.
    pub tls: Option<Trust>,
}

/// Accept `host` only if it is a loopback address: the load must not leave
/// the machine.
fn loopback_host(host: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| format!("--host {host:?}: not an IP address"))?
    };
    if !ip.is_loopback() {
        return Err(format!(
            "--host {ip}: not a loopback address (127.0.0.0/8 or ::1); \
             rmc-load sends on loopback only"
        ));
    }
    Ok(ip)
}

/// Parse a value of type `T`, naming the option on error.
fn value<T: std::str::FromStr>(parser: &mut Parser, name: &str) -> Result<T, String> {
    let v = parser.value().map_err(|e| e.to_string())?;
    let s = v.string().map_err(|e| e.to_string())?;
    s.parse()
        .map_err(|_| format!("{name}: invalid value {s:?}"))
}

/// Parse the command line (without the program name). `Ok(None)` means
/// `--help` was asked for.
pub fn parse_args<I>(args: I) -> Result<Option<Config>, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = Parser::from_args(args);
    let mut udp: Option<u16> = None;
    let mut tcp: Option<u16> = None;
    let mut cfg = Config {
        proto: Proto::Udp,
        port: 0,
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        mode: Mode::Get,
        keys: 1000,
        value_size: 100,
        multiget_keys: 10,
        rate: 0.0,
        outstanding: 16,
        sockets: 1,
        duration: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        preload: true,
        preload_tcp: None,
        prefix: "rmcload:".into(),
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        json: false,
        tls: None,
    };
    let mut tls = false;
    let mut trust: Option<Trust> = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Ok(None),
            Arg::Long("udp") => udp = Some(value(&mut parser, "--udp")?),
            Arg::Long("tcp") => tcp = Some(value(&mut parser, "--tcp")?),
            Arg::Long("host") => {
                let h: String = value(&mut parser, "--host")?;
                cfg.host = loopback_host(&h)?;
            }
            Arg::Long("mode") => {
                let m: String = value(&mut parser, "--mode")?;
                cfg.mode = match m.as_str() {
                    "get" => Mode::Get,
                    "multiget" => Mode::MultiGet,
                    "set" => Mode::Set,
                    "mixed" => Mode::Mixed,
                    _ => return Err(format!("--mode {m:?}: get, multiget, set or mixed")),
                };
            }
            Arg::Long("keys") => cfg.keys = value(&mut parser, "--keys")?,
            Arg::Long("value-size") => cfg.value_size = value(&mut parser, "--value-size")?,
            Arg::Long("multiget-keys") => {
                cfg.multiget_keys = value(&mut parser, "--multiget-keys")?
            }
            Arg::Long("rate") => cfg.rate = value(&mut parser, "--rate")?,
            Arg::Long("outstanding") => cfg.outstanding = value(&mut parser, "--outstanding")?,
            Arg::Long("sockets") => cfg.sockets = value(&mut parser, "--sockets")?,
            Arg::Long("duration") => {
                let secs: f64 = value(&mut parser, "--duration")?;
                if !(secs > 0.0 && secs < 1e6) {
                    return Err("--duration: must be more than 0 seconds".into());
                }
                cfg.duration = Duration::from_secs_f64(secs);
            }
            Arg::Long("timeout") => {
                let ms: u64 = value(&mut parser, "--timeout")?;
                if ms == 0 {
                    return Err("--timeout: must be at least 1 ms".into());
                }
                cfg.timeout = Duration::from_millis(ms);
            }
            Arg::Long("preload-tcp") => {
                cfg.preload_tcp = Some(value(&mut parser, "--preload-tcp")?)
            }
            Arg::Long("no-preload") => cfg.preload = false,
            Arg::Long("prefix") => cfg.prefix = value(&mut parser, "--prefix")?,
            Arg::Long("seed") => cfg.seed = value(&mut parser, "--seed")?,
            Arg::Long("json") => cfg.json = true,
            Arg::Long("tls") => tls = true,
            Arg::Long("tls-ca") => {
                let file: PathBuf = parser.value().map_err(|e| e.to_string())?.into();
                if trust.replace(Trust::Ca(file)).is_some() {
                    return Err("give only one of --tls-ca and --tls-no-verify".into());
                }
            }
            Arg::Long("tls-no-verify") => {
                if trust.replace(Trust::AnyCertificate).is_some() {
                    return Err("give only one of --tls-ca and --tls-no-verify".into());
                }
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    match (udp, tcp) {
        (Some(p), None) => (cfg.proto, cfg.port) = (Proto::Udp, p),
        (None, Some(p)) => (cfg.proto, cfg.port) = (Proto::Tcp, p),
        _ => return Err("give exactly one of --udp PORT and --tcp PORT".into()),
    }
    cfg.tls = match (tls, trust) {
        (false, None) => None,
        (false, Some(_)) => return Err("--tls-ca and --tls-no-verify go with --tls".into()),
        (true, None) => {
            return Err(
                "--tls: give --tls-ca FILE (the CA that signed the server's \
                        certificate) or --tls-no-verify"
                    .into(),
            )
        }
        (true, Some(_)) if cfg.proto == Proto::Udp => {
            return Err("--tls: over TCP only (--tcp PORT)".into())
        }
        (true, t) => t,
    };
    check(&cfg)?;
    Ok(Some(cfg))
}

/// The consistency checks once all options are read.
fn check(cfg: &Config) -> Result<(), String> {
    if cfg.port == 0 {
        return Err("port 0 is no server port".into());
    }
    if cfg.keys == 0 {
        return Err("--keys: at least 1".into());
    }
    if cfg.mode == Mode::MultiGet && !(1..=cfg.keys).contains(&cfg.multiget_keys) {
        return Err("--multiget-keys: between 1 and --keys".into());
    }
    if !(1..=MAX_SOCKETS).contains(&cfg.sockets) {
        return Err(format!("--sockets: between 1 and {MAX_SOCKETS}"));
    }
    if !(1..=MAX_OUTSTANDING).contains(&cfg.outstanding) {
        return Err(format!("--outstanding: between 1 and {MAX_OUTSTANDING}"));
    }
    if !(cfg.rate >= 0.0 && cfg.rate.is_finite()) {
        return Err("--rate: 0 (closed loop) or more".into());
    }
    if cfg.prefix.is_empty() || cfg.prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("--prefix: printable characters, no spaces".into());
    }
    if cfg.prefix.len() + 10 > 250 {
        return Err("--prefix: keys would exceed 250 bytes".into());
    }
    if cfg.proto == Proto::Udp {
        let key = cfg.prefix.len() + 10;
        let set = UDP_HEADER_SIZE + set_request_len(key, cfg.value_size);
        let sets = matches!(cfg.mode, Mode::Set | Mode::Mixed)
            || (cfg.preload && cfg.preload_tcp.is_none());
        if sets && set > UDP_MAX_DATAGRAM {
            return Err(format!(
                "--value-size {}: a set does not fit in one datagram; \
                 use --tcp, or --preload-tcp with a get mode",
                cfg.value_size
            ));
        }
        let get = UDP_HEADER_SIZE + 6 + cfg.multiget_keys as usize * (key + 1);
        if cfg.mode == Mode::MultiGet && get > UDP_MAX_DATAGRAM {
            return Err("--multiget-keys: the request does not fit in one datagram".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<Config>, String> {
        parse_args(s.split_whitespace())
    }

    #[test]
    fn options() {
        let c = args("--udp 11211 --mode multiget --keys 100 --multiget-keys 20 --rate 2000 --duration 1.5 --json")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.proto, c.port, c.mode),
            (Proto::Udp, 11211, Mode::MultiGet)
        );
        assert_eq!(c.duration, Duration::from_millis(1500));
        assert!(c.json && c.rate == 2000.0);
        assert!(args("--help").unwrap().is_none());
        assert!(args("--mode get").is_err());
        assert!(args("--udp 1 --tcp 2").is_err());
        assert!(args("--udp 1 --mode multiget --keys 5 --multiget-keys 6").is_err());
        assert!(args("--udp 1 --value-size 70000").is_err());
        assert!(args("--udp 1 --value-size 70000 --no-preload").is_ok());
        assert!(args("--tcp 1 --value-size 70000").is_ok());
        for ok in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
            assert!(args(&format!("--udp 1 --host {ok}")).is_ok(), "{ok}");
        }
        let c = args("--tcp 1 --tls --tls-ca ca.pem").unwrap().unwrap();
        assert_eq!(c.tls, Some(Trust::Ca("ca.pem".into())));
        let c = args("--tcp 1 --tls --tls-no-verify").unwrap().unwrap();
        assert_eq!(c.tls, Some(Trust::AnyCertificate));
        assert_eq!(args("--tcp 1").unwrap().unwrap().tls, None);
        for bad in [
            "--tcp 1 --tls",
            "--udp 1 --tls --tls-no-verify",
            "--tcp 1 --tls-ca ca.pem",
            "--tcp 1 --tls --tls-ca a.pem --tls-no-verify",
            "--tcp 1 --tls --tls-ca a.pem --tls-ca b.pem",
        ] {
            let e = args(bad).unwrap_err();
            assert!(e.contains("--tls"), "{bad}: {e}");
        }
        for bad in [
            "10.0.0.1",
            "0.0.0.0",
            "192.168.1.1",
            "::",
            "::ffff:127.0.0.1",
            "example.com",
        ] {
            let e = args(&format!("--udp 1 --host {bad}")).unwrap_err();
            assert!(e.contains("--host"), "{bad}: {e}");
        }
    }
}
