//! ASCII authentication (`-Y FILE`), after memcached's `authfile.c` and
//! `try_read_command_asciiauth`.
//!
//! The file holds up to [`MAX_ENTRIES`] lines of `user:password`. Until a
//! connection has authenticated, the only command it may send is
//!
//! ```text
//! set <any> <any> <any> <bytes>\r\n<user> <password>\r\n
//! ```
//!
//! (key, flags and exptime are ignored); anything else is answered
//! `CLIENT_ERROR unauthenticated`. SIGHUP reloads the file; a file that no
//! longer loads leaves the old entries in force.

use std::path::Path;
use std::sync::RwLock;

use crate::sync;

/// Entries read from a file at most (memcached reads no more, silently).
pub const MAX_ENTRIES: usize = 8;
/// Longest line memcached reads in one piece (its `fgets` buffer less the
/// terminating NUL).
const MAX_LINE: usize = 255;

/// Why a file could not be loaded, with memcached's start-up message.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be opened or read.
    Open(std::io::Error),
    /// A line without a `:`.
    Malformed,
}

impl LoadError {
    /// memcached's message for this failure (it then exits 1).
    pub fn message(&self, file: &Path) -> String {
        match self {
            LoadError::Open(e) => format!(
                "Could not open authfile [{}] for reading, error {e}",
                file.display()
            ),
            LoadError::Malformed => format!(
                "Authfile [{}] has a malformed entry. Should be 'user:password'",
                file.display()
            ),
        }
    }
}

/// The loaded entries.
#[derive(Debug, Default)]
pub struct Entries(Vec<(Vec<u8>, Vec<u8>)>);

impl Entries {
    /// Parse a file's bytes as memcached does: each line must hold a `:`
    /// within its first 255 bytes; the password runs to the line's end or
    /// a `\r`; lines past the eighth are ignored.
    pub fn parse(data: &[u8]) -> Result<Entries, LoadError> {
        let mut entries = Vec::new();
        let body = data.strip_suffix(b"\n").unwrap_or(data);
        if body.is_empty() {
            return Ok(Entries(entries));
        }
        for line in body.split(|&b| b == b'\n') {
            let head = &line[..line.len().min(MAX_LINE)];
            let colon = head
                .iter()
                .position(|&b| b == b':')
                .ok_or(LoadError::Malformed)?;
            let pass = &head[colon + 1..];
            let pass_end = pass.iter().position(|&b| b == b'\r').unwrap_or(pass.len());
            entries.push((head[..colon].to_vec(), pass[..pass_end].to_vec()));
            if entries.len() == MAX_ENTRIES {
                break;
            }
        }
        Ok(Entries(entries))
    }

    /// Whether `user` and `pass` match an entry. Every entry's bytes are
    /// compared in full whatever they hold (memcached's `safe_memcmp`), so
    /// the time taken does not tell how much of a guess was right.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        self.0.iter().fold(false, |found, (u, p)| {
            found | (same_bytes(u, user) & same_bytes(p, pass))
        })
    }
}

/// Equal slices, compared without stopping at the first difference.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The `-Y` file and its entries, reloadable.
#[derive(Debug)]
pub struct AuthFile {
    path: std::path::PathBuf,
    entries: RwLock<Entries>,
}

impl AuthFile {
    /// Load `path` (at start: an error stops the server).
    pub fn load(path: &Path) -> Result<AuthFile, LoadError> {
        Ok(AuthFile {
            path: path.to_path_buf(),
            entries: RwLock::new(read(path)?),
        })
    }

    /// Read the file again (SIGHUP). On failure the entries in force stay.
    pub fn reload(&self) -> Result<(), LoadError> {
        let fresh = read(&self.path)?;
        *sync::write(&self.entries) = fresh;
        Ok(())
    }

    /// Whether `user` and `pass` may in.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        sync::read(&self.entries).check(user, pass)
    }

    /// The file's path (`stats settings`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `-Y` file of `settings`, loaded, or memcached's start-up message
/// and exit status when it cannot be used: UDP must be off (64, EX_USAGE)
/// and the file must load (1).
pub fn from_settings(
    settings: &crate::settings::Settings,
) -> Result<Option<AuthFile>, (String, i32)> {
    let Some(path) = &settings.auth_file else {
        return Ok(None);
    };
    if settings.udp_port != 0 {
        return Err((
            "Cannot use UDP with ascii authentication enabled (-U 0 to disable)".into(),
            64,
        ));
    }
    AuthFile::load(path)
        .map(Some)
        .map_err(|e| (e.message(path), 1))
}

fn read(path: &Path) -> Result<Entries, LoadError> {
    Entries::parse(&std::fs::read(path).map_err(LoadError::Open)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_memcached_does() {
        let e = Entries::parse(b"user:pass\nother:se:cret\r\n").unwrap();
        assert!(e.check(b"user", b"pass"));
        assert!(e.check(b"other", b"se:cret"));
        assert!(!e.check(b"user", b"pas"));
        assert!(!e.check(b"user", b"passs"));
        assert!(!e.check(b"other", b"pass"));
        assert!(!e.check(b"", b""));
        // An empty password is a password.
        assert!(Entries::parse(b"u:\n").unwrap().check(b"u", b""));
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(matches!(
            Entries::parse(b"user\n"),
            Err(LoadError::Malformed)
        ));
        assert!(matches!(
            Entries::parse(b"a:b\n\nc:d\n"),
            Err(LoadError::Malformed)
        ));
        // The colon must come within the first 255 bytes of the line.
        let mut long = vec![b'u'; 300];
        long.extend_from_slice(b":p\n");
        assert!(matches!(Entries::parse(&long), Err(LoadError::Malformed)));
    }

    #[test]
    fn reads_at_most_eight_entries() {
        let text: String = (0..10).map(|i| format!("u{i}:p{i}\n")).collect();
        let e = Entries::parse(text.as_bytes()).unwrap();
        assert!(e.check(b"u7", b"p7"));
        assert!(!e.check(b"u8", b"p8"));
    }
}
