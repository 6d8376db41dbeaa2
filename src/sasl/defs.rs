//! What memcached's `sasl_defs.c` decides around the library: where the
//! configuration is looked for, at which verbosity the library's messages
//! are logged, the `MEMCACHED_SASL_PWDB` password file, and why
//! initialisation failed. Pure functions, tested without the library.

use std::path::{Path, PathBuf};

/// The file the dynamic loader is asked for: the soname of Cyrus SASL 2.
pub const LIBRARY: &str = "libsasl2.so.2";

/// Why SASL could not be made ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitError {
    /// `libsasl2.so.2` or one of its functions could not be loaded.
    Load(String),
    /// `sasl_server_init` failed (with the library's text).
    Init(String),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Load(why) => write!(
                f,
                "ERROR: -S needs Cyrus SASL's library {LIBRARY}, which could not be \
                 loaded ({why}). Install it (Debian: libsasl2-2 and libsasl2-modules)."
            ),
            // memcached's own line.
            InitError::Init(_) => f.write_str("Error initializing sasl."),
        }
    }
}

impl InitError {
    /// The exit status: a server without the library refuses `-S` as
    /// memcached built without SASL does (`EX_USAGE`); a failed
    /// initialisation exits 1, as memcached's `init_sasl`.
    pub fn exit_code(&self) -> i32 {
        match self {
            InitError::Load(_) => crate::settings::EX_USAGE,
            InitError::Init(_) => 1,
        }
    }
}

/// memcached's `sasl_getconf` (the `SASL_CB_GETCONFPATH` flavour): the
/// directory the library reads `memcached.conf` from. `SASL_CONF_PATH`
/// wins; otherwise, for `/etc/sasl` then `/etc/sasl2`, a directory named
/// `memcached.conf` holding a `memcached.conf` is itself the path, and a
/// file `memcached.conf` makes its directory the path. `exists` is asked
/// about each candidate (a parameter so that tests need no `/etc`).
pub fn conf_path(env: Option<PathBuf>, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    if env.is_some() {
        return env;
    }
    for dir in ["/etc/sasl", "/etc/sasl2"] {
        let named = Path::new(dir).join("memcached.conf");
        if exists(&named.join("memcached.conf")) {
            return Some(named);
        }
        if exists(&named) {
            return Some(PathBuf::from(dir));
        }
    }
    None
}

/// The log level for a message of the library's severity `level`, after
/// memcached's `sasl_log`: errors always, failures and warnings from
/// `-v`, notes, debug and traces from `-vv`; messages that may show a
/// password (`SASL_LOG_PASS`) only at `-vvv`. `None`: not logged.
pub fn callback_level(level: i32) -> Option<log::Level> {
    match level {
        0 => None,
        1 => Some(log::Level::Error),
        2 | 3 => Some(log::Level::Info),
        4..=6 => Some(log::Level::Debug),
        7 => Some(log::Level::Trace),
        _ => Some(log::Level::Error),
    }
}

/// Longest `user` plus `password` memcached's password file check takes
/// (its 256-byte line buffer less `:`, the line end and the NUL).
const PWDB_MAX: usize = 256 - 4;

/// memcached's `sasl_server_userdb_checkpass`: whether `file` has a line
/// `user:password[:...]` for this user and password. The first line for
/// the user decides.
pub fn pwdb_check(file: &Path, user: &[u8], pass: &[u8]) -> bool {
    if user.len() + pass.len() > PWDB_MAX {
        log::warn!(
            "WARNING: Failed to authenticate <{}> due to too long password ({})",
            String::from_utf8_lossy(user),
            pass.len()
        );
        return false;
    }
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            log::info!(
                "WARNING: Failed to open sasl database <{}>: {e}",
                file.display()
            );
            return false;
        }
    };
    let ok = pwdb_matches(&data, user, pass);
    if !ok {
        log::info!(
            "INFO: User <{}> failed to authenticate",
            String::from_utf8_lossy(user)
        );
    }
    ok
}

/// The matching rule of [`pwdb_check`] over a file's bytes: the password
/// must be followed by `:`, a line end or the end of the file.
pub fn pwdb_matches(data: &[u8], user: &[u8], pass: &[u8]) -> bool {
    for line in data.split(|&b| b == b'\n') {
        let Some(rest) = line.strip_prefix(user).and_then(|r| r.strip_prefix(b":")) else {
            continue;
        };
        return match rest.strip_prefix(pass) {
            Some(after) => matches!(after.first(), None | Some(b':' | b'\r' | 0)),
            None => false,
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_path_follows_memcached() {
        let env = Some(PathBuf::from("/x"));
        assert_eq!(conf_path(env.clone(), |_| true), env);
        assert_eq!(conf_path(None, |_| false), None);
        // A file /etc/sasl2/memcached.conf: the directory is the path.
        let file = |p: &Path| p == Path::new("/etc/sasl2/memcached.conf");
        assert_eq!(conf_path(None, file), Some(PathBuf::from("/etc/sasl2")));
        // A directory holding the file is itself the path.
        let dir = |p: &Path| {
            p == Path::new("/etc/sasl/memcached.conf/memcached.conf")
                || p == Path::new("/etc/sasl/memcached.conf")
        };
        assert_eq!(
            conf_path(None, dir),
            Some(PathBuf::from("/etc/sasl/memcached.conf"))
        );
    }

    #[test]
    fn pwdb_lines() {
        let db = b"alice:secret\nbob:pw:extra\r\ncarol:x\r\nalice:other\n";
        assert!(pwdb_matches(db, b"alice", b"secret"));
        assert!(!pwdb_matches(db, b"alice", b"other"), "first line decides");
        assert!(!pwdb_matches(db, b"alice", b"secre"));
        assert!(pwdb_matches(db, b"bob", b"pw"));
        assert!(pwdb_matches(db, b"carol", b"x"));
        assert!(!pwdb_matches(db, b"al", b"ice:secret"));
        assert!(!pwdb_matches(db, b"dave", b""));
        assert!(pwdb_matches(b"eve:", b"eve", b""));
    }

    #[test]
    fn log_levels() {
        assert_eq!(callback_level(0), None);
        assert_eq!(callback_level(1), Some(log::Level::Error));
        assert_eq!(callback_level(3), Some(log::Level::Info));
        assert_eq!(callback_level(5), Some(log::Level::Debug));
        assert_eq!(callback_level(7), Some(log::Level::Trace));
    }
}
