//! The option loop of memcached's `main()`, on `lexopt`: glibc getopt_long
//! syntax (`-vv`, `-p11211`, `-p 11211`, `--port=11211`, unambiguous
//! abbreviations such as `--po`), each flag's conversion and immediate
//! checks, then the consistency checks memcached runs once all options are
//! read.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::{Arg, Parser};

use super::config::{Protocol, Settings};
use super::error::{GetoptError, SettingsError};
use super::extended;
use super::state::{State, SLAB_PAGE_SIZE};
use crate::cnum::{atof, atoi, safe_strtoul, strtol};

/// memcached's getopt string: a letter followed by `:` takes a value.
const SHORTOPTS: &str = "a:AZp:s:U:m:Mc:khiVrvdl:u:P:f:n:t:D:LR:Cb:B:I:SFXWY:e:o:N:";

/// Whether a long option takes a value (getopt's `has_arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HasArg {
    No,
    Required,
    /// Only `--verbose`: a value may be attached with `=` and is ignored.
    Optional,
}

/// memcached's long options and the short option each stands for, in
/// memcached's order, which is the order glibc lists ambiguous matches in.
const LONGOPTS: &[(&str, HasArg, char)] = &[
    ("unix-mask", HasArg::Required, 'a'),
    ("enable-shutdown", HasArg::No, 'A'),
    ("enable-ssl", HasArg::No, 'Z'),
    ("port", HasArg::Required, 'p'),
    ("unix-socket", HasArg::Required, 's'),
    ("udp-port", HasArg::Required, 'U'),
    ("memory-limit", HasArg::Required, 'm'),
    ("disable-evictions", HasArg::No, 'M'),
    ("conn-limit", HasArg::Required, 'c'),
    ("lock-memory", HasArg::No, 'k'),
    ("help", HasArg::No, 'h'),
    ("license", HasArg::No, 'i'),
    ("version", HasArg::No, 'V'),
    ("enable-coredumps", HasArg::No, 'r'),
    ("verbose", HasArg::Optional, 'v'),
    ("daemon", HasArg::No, 'd'),
    ("listen", HasArg::Required, 'l'),
    ("user", HasArg::Required, 'u'),
    ("pidfile", HasArg::Required, 'P'),
    ("slab-growth-factor", HasArg::Required, 'f'),
    ("slab-min-size", HasArg::Required, 'n'),
    ("threads", HasArg::Required, 't'),
    ("enable-largepages", HasArg::No, 'L'),
    ("max-reqs-per-event", HasArg::Required, 'R'),
    ("disable-cas", HasArg::No, 'C'),
    ("listen-backlog", HasArg::Required, 'b'),
    ("protocol", HasArg::Required, 'B'),
    ("max-item-size", HasArg::Required, 'I'),
    ("enable-sasl", HasArg::No, 'S'),
    ("disable-flush-all", HasArg::No, 'F'),
    ("disable-dumping", HasArg::No, 'X'),
    ("disable-watch", HasArg::No, 'W'),
    ("auth-file", HasArg::Required, 'Y'),
    ("memory-file", HasArg::Required, 'e'),
    ("extended", HasArg::Required, 'o'),
    ("napi-ids", HasArg::Required, 'N'),
];

/// memcached's bounds for `-I`.
const ITEM_SIZE_MAX_LOWER_LIMIT: i64 = 1024;
const ITEM_SIZE_MAX_UPPER_LIMIT: i64 = 1024 * 1024 * 1024;
/// memcached's `CHUNK_ALIGN_BYTES` and `MAX_NUMBER_OF_SLAB_CLASSES - 1`.
const CHUNK_ALIGN_BYTES: u32 = 8;
const MAX_SLAB_SIZES: usize = 63;
/// Above this many threads memcached warns (but goes on).
const MANY_THREADS: i32 = 64;

/// What the options ask for; [`super::Parsed`] without the warnings.
pub(super) enum Action {
    Run(Box<Settings>),
    Help,
    Version,
    License,
}

/// Read `args` (without the program name); warnings met on the way are
/// appended to `warnings` even when an error follows.
pub(super) fn run<I>(args: I, warnings: &mut Vec<String>) -> Result<Action, SettingsError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut state = State::new();
    let result =
        read_options(&mut state, Parser::from_args(args)).and_then(|action| match action {
            Some(action) => Ok(action),
            None => finish(&mut state)
                .map(|()| Action::Run(Box::new(std::mem::take(&mut state.settings)))),
        });
    warnings.append(&mut state.warnings);
    result
}

/// The getopt loop; `Some` when an option ends parsing (`-h`, `-V`, `-i`).
fn read_options(state: &mut State, mut parser: Parser) -> Result<Option<Action>, SettingsError> {
    // getopt takes `-p=1` as the value "=1" (so atoi gives 0), not "1".
    parser.set_short_equals(false);
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => return Ok(None),
            // Only a leftover `--flag=value` can get here, and every long
            // option consumes its value below; keep getopt's wording anyway.
            Err(lexopt::Error::UnexpectedValue { option, .. }) => {
                let name = option.trim_start_matches('-').to_owned();
                return Err(GetoptError::LongNoArgument(name).into());
            }
            Err(e) => return Err(GetoptError::Unrecognized(e.to_string()).into()),
        };
        let (opt, value) = match arg {
            // GNU getopt permutes: operands are skipped and options after
            // them still count; everything after `--` is an operand.
            Arg::Value(_) => continue,
            Arg::Short(c) => match short_takes_value(c) {
                None => return Err(GetoptError::InvalidOption(c).into()),
                Some(false) => (c, None),
                Some(true) => match parser.value() {
                    Ok(v) => (c, Some(v)),
                    Err(_) => return Err(GetoptError::MissingArgument(c).into()),
                },
            },
            Arg::Long(typed) => {
                let typed = typed.to_owned();
                long_option(&mut parser, &typed)?
            }
        };
        if let Some(action) = apply(state, opt, value)? {
            return Ok(Some(action));
        }
    }
}

/// `Some(takes_value)` for a letter of [`SHORTOPTS`], `None` otherwise.
fn short_takes_value(c: char) -> Option<bool> {
    if c == ':' {
        return None;
    }
    let at = SHORTOPTS.find(c)?;
    Some(SHORTOPTS[at + c.len_utf8()..].starts_with(':'))
}

/// Resolve a long option as glibc does (exact name, else a prefix of
/// exactly one name) and fetch its value.
fn long_option(
    parser: &mut Parser,
    typed: &str,
) -> Result<(char, Option<OsString>), SettingsError> {
    let exact = LONGOPTS.iter().find(|(name, _, _)| *name == typed);
    let matches: Vec<_> = match exact {
        Some(entry) => vec![entry],
        None => LONGOPTS
            .iter()
            .filter(|(name, _, _)| name.starts_with(typed))
            .collect(),
    };
    let &(name, has_arg, short) = match matches.as_slice() {
        [one] => *one,
        _ => {
            // glibc quotes what was typed, `=value` included.
            let mut shown = typed.to_owned();
            if let Some(v) = parser.optional_value() {
                shown.push('=');
                shown.push_str(&v.to_string_lossy());
            }
            let candidates: Vec<_> = matches.iter().map(|(name, _, _)| *name).collect();
            return Err(if candidates.is_empty() {
                GetoptError::Unrecognized(shown).into()
            } else {
                GetoptError::Ambiguous {
                    typed: shown,
                    candidates,
                }
                .into()
            });
        }
    };
    let value = match has_arg {
        HasArg::No if parser.optional_value().is_some() => {
            return Err(GetoptError::LongNoArgument(name.to_owned()).into())
        }
        HasArg::No => None,
        HasArg::Optional => {
            // memcached counts `--verbose=N` as one `-v`, N unused.
            let _ = parser.optional_value();
            None
        }
        HasArg::Required => match parser.optional_value() {
            Some(v) => Some(v),
            None => Some(
                parser
                    .value()
                    .map_err(|_| GetoptError::LongMissingArgument(name.to_owned()))?,
            ),
        },
    };
    Ok((short, value))
}

/// One option, as memcached's `switch (c)` handles it.
fn apply(
    state: &mut State,
    opt: char,
    value: Option<OsString>,
) -> Result<Option<Action>, SettingsError> {
    let text = value
        .as_ref()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = || value.clone().map(PathBuf::from);
    let s = &mut state.settings;
    match opt {
        'A' => s.shutdown_command = true,
        'Z' => s.tls.enabled = true,
        // strtol base 8: "0777x" is 0o777, garbage is 0, as with chmod-ish C.
        'a' => s.access_mask = strtol(&text, 8).value as u32,
        'U' => {
            state.udp_port = atoi(&text);
            state.udp_specified = true;
        }
        'p' => {
            state.port = atoi(&text);
            state.tcp_specified = true;
        }
        's' => s.socket_path = path(),
        // `(size_t) atoi(optarg) * 1024 * 1024`, wrapping like the C.
        'm' => s.maxbytes = (i64::from(atoi(&text)) as u64).wrapping_mul(1 << 20) as usize,
        'M' => s.evict_to_free = false,
        'c' => s.maxconns = positive(atoi(&text), "Maximum connections must be greater than 0")?,
        'h' => return Ok(Some(Action::Help)),
        'i' => return Ok(Some(Action::License)),
        'V' => return Ok(Some(Action::Version)),
        'k' => s.lock_memory = true,
        // memcached has no ceiling; 3 already logs everything we can log.
        'v' => s.verbose = (s.verbose + 1).min(3),
        'l' => add_listen(&mut s.inter, &text),
        'd' => s.daemonize = true,
        'r' => s.maxcore = true,
        // memcached only refuses 0; a negative count would serve nothing.
        'R' => {
            let msg = "Number of requests per event must be greater than 0";
            s.reqs_per_event = positive(atoi(&text), msg)?;
        }
        'u' => s.username = Some(text),
        'P' => s.pid_file = path(),
        'e' => s.memory_file = path(),
        'f' => {
            let factor = atof(&text);
            // NaN and infinity pass memcached's `<= 1.0` but break slab sizing.
            if !(factor > 1.0 && factor.is_finite()) {
                return Err(SettingsError::BadValue(
                    "Factor must be greater than 1".into(),
                ));
            }
            s.factor = factor;
        }
        'n' => s.chunk_size = positive(atoi(&text), "Chunk size must be greater than 0")?,
        't' => {
            let n = atoi(&text);
            s.num_threads = positive(n, "Number of threads must be greater than 0")?;
            state.num_threads = n;
            if n > MANY_THREADS {
                state.warnings.push(
                    "WARNING: Setting a high number of workerthreads is not recommended.\n \
                     Set this value to the number of cores in your machine or less."
                        .into(),
                );
            }
        }
        'D' => {
            let first = value
                .as_ref()
                .and_then(|v| v.as_encoded_bytes().first().copied());
            let Some(delimiter) = first else {
                return Err(SettingsError::BadValue("No delimiter specified".into()));
            };
            s.prefix_delimiter = delimiter;
            s.detail_enabled = true;
        }
        'L' => s.large_pages = true,
        'C' => s.use_cas = false,
        'b' => s.backlog = atoi(&text),
        'B' => {
            state.protocol_specified = true;
            s.binding_protocol = match text.as_str() {
                "auto" => Protocol::Auto,
                "binary" => Protocol::Binary,
                "ascii" => Protocol::Ascii,
                _ => {
                    return Err(SettingsError::Usage(format!(
                        "Invalid value for binding protocol: {text}\n \
                         -- should be one of auto, binary, or ascii"
                    )))
                }
            };
        }
        'I' => state.item_size_max = item_size(&text),
        'S' => s.sasl = true,
        'F' => s.flush_enabled = false,
        'X' => s.dump_enabled = false,
        'W' => s.watch_enabled = false,
        'Y' => s.auth_file = path(),
        'N' => {
            let n = atoi(&text);
            let msg = "Maximum number of NAPI IDs must be greater than 0";
            s.num_napi_ids = positive(n, msg)?;
            state.num_napi_ids = n;
        }
        'o' => extended::apply(state, &text)?,
        // Unreachable (every SHORTOPTS letter is handled above); this is
        // memcached's `default:` case.
        _ => return Err(GetoptError::InvalidOption(opt).into()),
    }
    Ok(None)
}

/// `n` as a count, or memcached's refusal when it is not above zero.
fn positive(n: i32, msg: &str) -> Result<usize, SettingsError> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| SettingsError::BadValue(msg.to_owned()))
}

/// `-l` adds to a comma-separated list; like memcached, an address that is
/// a substring of the list so far is dropped as a repeat.
fn add_listen(inter: &mut Option<String>, addr: &str) {
    match inter {
        Some(list) if list.contains(addr) => {}
        Some(list) => {
            list.push(',');
            list.push_str(addr);
        }
        None => *inter = Some(addr.to_owned()),
    }
}

/// `-I`: memcached looks only at the last character. `k`/`K` and `m`/`M`
/// scale what `atoi` reads before it (in 32-bit int arithmetic); anything
/// else, `g` included, leaves the whole text to `atoi` as bytes, so
/// `-I 2g` is 2 bytes and refused as too small.
fn item_size(text: &str) -> i32 {
    let Some(&last) = text.as_bytes().last() else {
        return 0;
    };
    let number = &text[..text.len() - 1];
    match last {
        b'k' | b'K' => atoi(number).wrapping_mul(1024),
        b'm' | b'M' => atoi(number).wrapping_mul(1024 * 1024),
        _ => atoi(text),
    }
}

/// memcached's checks after the option loop, in its order, and the
/// conversion of the C-typed values into [`Settings`].
fn finish(state: &mut State) -> Result<(), SettingsError> {
    let usage = |msg: String| Err(SettingsError::Usage(msg));
    if state.num_napi_ids > state.num_threads {
        return usage(format!(
            "Number of napi_ids({}) cannot be greater than number of threads({})",
            state.num_napi_ids, state.num_threads
        ));
    }
    let item = i64::from(state.item_size_max);
    if item < ITEM_SIZE_MAX_LOWER_LIMIT {
        return usage("Item max size cannot be less than 1024 bytes.".into());
    }
    if item as u64 > state.settings.maxbytes as u64 / 2 {
        return usage("Cannot set item size limit higher than 1/2 of memory max.".into());
    }
    if item > ITEM_SIZE_MAX_UPPER_LIMIT {
        return usage("Cannot set item size limit higher than a gigabyte.".into());
    }
    if item > 1024 * 1024 && !state.slab_chunk_changed {
        state.slab_chunk_max = SLAB_PAGE_SIZE / 2;
    }
    let chunk = i64::from(state.slab_chunk_max);
    if chunk > item {
        return usage(format!(
            "slab_chunk_max (bytes: {chunk}) cannot be larger than -I (item_size_max {item})"
        ));
    }
    // memcached divides unchecked and dies of SIGFPE on 0; refuse instead.
    if chunk <= 0 || item % chunk != 0 {
        return usage(format!(
            "-I (item_size_max: {item}) must be evenly divisible by slab_chunk_max (bytes: {chunk})"
        ));
    }
    let page = i64::from(SLAB_PAGE_SIZE);
    if page % chunk != 0 {
        return usage(format!(
            "slab_chunk_max (bytes: {chunk}) must divide evenly into {page} (slab_page_size)"
        ));
    }
    let s = &mut state.settings;
    s.item_size_max = item as usize;
    s.slab_chunk_size_max = chunk as usize;
    s.slab_page_size = SLAB_PAGE_SIZE as usize;
    if let Some(raw) = &state.slab_sizes {
        s.slab_sizes = slab_sizes(raw, s.chunk_size, s.slab_chunk_size_max)?;
    }
    if state.hot_lru_pct + state.warm_lru_pct > 80 {
        return usage("hot_lru_pct + warm_lru_pct cannot be more than 80% combined".into());
    }
    s.lru_maintainer_thread = state.lru_maintainer;
    if state.temp_lru && !state.lru_maintainer {
        return usage("temporary_ttl requires lru_maintainer to be enabled".into());
    }
    // memcached checks SASL before `-Y`; with both and no `-B`, `-Y` has
    // the last word and the listeners speak ASCII.
    if s.sasl {
        if !state.protocol_specified {
            s.binding_protocol = Protocol::Binary;
        } else if s.binding_protocol != Protocol::Binary {
            return usage("ERROR: You cannot allow the ASCII protocol while using SASL.".into());
        }
        // `-U -1` (a random port) is UDP on too.
        if state.udp_port != 0 {
            return usage(
                "ERROR: Cannot enable UDP while using binary SASL authentication.".into(),
            );
        }
    }
    if s.auth_file.is_some() {
        if !state.protocol_specified {
            s.binding_protocol = Protocol::Ascii;
        } else if s.binding_protocol != Protocol::Ascii {
            return usage(
                "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."
                    .into(),
            );
        }
    }
    // `-U` alone moves the TCP port along with it.
    if state.udp_specified && state.udp_port != 0 && !state.tcp_specified {
        state.port = state.udp_port;
    }
    // memcached checks only the TCP port, and only above 65535; a negative
    // or too large UDP port is refused here too rather than wrapped.
    s.port = port(state.port)?;
    s.udp_port = port(state.udp_port)?;
    Ok(())
}

/// A port as memcached keeps it: an `int` where -1 means "any free port".
fn port(n: i32) -> Result<i32, SettingsError> {
    if (-1..=65535).contains(&n) {
        Ok(n)
    } else {
        Err(SettingsError::Usage(format!(
            "ERROR: Invalid port number {n}."
        )))
    }
}

/// memcached's `_parse_slab_sizes`: `-`-separated, ascending by more than
/// the chunk alignment, within `[chunk_size, slab_chunk_max]`.
fn slab_sizes(raw: &str, chunk_size: usize, chunk_max: usize) -> Result<Vec<u32>, SettingsError> {
    let refuse = |msg: String| Err(SettingsError::Usage(msg));
    if raw.is_empty() {
        // memcached exits 64 without a word here.
        return refuse("slab_sizes needs at least one size".into());
    }
    let mut sizes = Vec::new();
    let mut last = 0u32;
    for piece in raw.split('-').filter(|p| !p.is_empty()) {
        let size = safe_strtoul(piece.as_bytes()).unwrap_or(0);
        if (size as usize) < chunk_size || size as usize > chunk_max {
            return refuse(format!("slab size {size} is out of valid range"));
        }
        if last >= size {
            return refuse(format!(
                "slab size {size} cannot be lower than or equal to a previous class size"
            ));
        }
        if size <= last + CHUNK_ALIGN_BYTES {
            return refuse(format!(
                "slab size {size} must be at least {CHUNK_ALIGN_BYTES} bytes larger than previous class"
            ));
        }
        sizes.push(size);
        last = size;
        if sizes.len() >= MAX_SLAB_SIZES {
            return refuse("too many slab classes specified".into());
        }
    }
    Ok(sizes)
}
