//! The ways the command line can be refused, each with the exact text and
//! exit status memcached 1.6.18 gives for it.

use std::fmt;

/// `EX_USAGE` from `<sysexits.h>`: memcached's exit status for options that
/// are each well formed but cannot be honoured together.
pub const EX_USAGE: i32 = 64;

/// The name glibc's getopt puts in front of its diagnostics (memcached's is
/// `argv[0]`; ours is fixed so that [`parse`](super::parse) stays pure).
const PROGRAM_NAME: &str = "rmemcached";

/// A complaint of the option scanner itself (glibc `getopt_long`), worded
/// as glibc words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// A short option memcached does not have (`-x`).
    InvalidOption(char),
    /// A short option that takes a value came last (`-p`).
    MissingArgument(char),
    /// A long option that takes a value came last (`--port`); holds the
    /// full name even when an abbreviation was typed, as glibc does.
    LongMissingArgument(String),
    /// A long flag was given `=value` (`--daemon=1`); holds the full name.
    LongNoArgument(String),
    /// No long option starts with what was typed; holds what was typed
    /// (with any `=value`) without the leading dashes.
    Unrecognized(String),
    /// What was typed abbreviates more than one long option (`--ver`).
    Ambiguous {
        /// What was typed, without the leading dashes.
        typed: String,
        /// The long options it could mean, in memcached's table order.
        candidates: Vec<&'static str>,
    },
}

impl fmt::Display for GetoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetoptError::InvalidOption(c) => write!(f, "invalid option -- '{c}'"),
            GetoptError::MissingArgument(c) => write!(f, "option requires an argument -- '{c}'"),
            GetoptError::LongMissingArgument(name) => {
                write!(f, "option '--{name}' requires an argument")
            }
            GetoptError::LongNoArgument(name) => {
                write!(f, "option '--{name}' doesn't allow an argument")
            }
            GetoptError::Unrecognized(typed) => write!(f, "unrecognized option '--{typed}'"),
            GetoptError::Ambiguous { typed, candidates } => {
                write!(f, "option '--{typed}' is ambiguous; possibilities:")?;
                for name in candidates {
                    write!(f, " '--{name}'")?;
                }
                Ok(())
            }
        }
    }
}

/// Why the command line was refused. [`Display`](fmt::Display) gives the
/// text memcached prints to stderr (possibly several lines, without the
/// final newline) and [`exit_code`](SettingsError::exit_code) its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// The scanner refused an option; memcached's switch then lands in its
    /// `default:` case and adds `Illegal argument "?"`. Exit status 1.
    Getopt(GetoptError),
    /// One option's value is out of range while the options are being read
    /// (`-t 0`, `-o hashpower=5`): memcached returns 1 from `main`.
    BadValue(String),
    /// `-o` named an extended option memcached does not know; holds the
    /// offending item (`name` or `name=value`). Exit status 1.
    IllegalSuboption(String),
    /// Options memcached refuses with [`EX_USAGE`]: `-B` with a bad name
    /// and the consistency checks run after every option has been read.
    Usage(String),
}

impl SettingsError {
    /// The process exit status memcached uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            SettingsError::Getopt(_)
            | SettingsError::BadValue(_)
            | SettingsError::IllegalSuboption(_) => 1,
            SettingsError::Usage(_) => EX_USAGE,
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Getopt(e) => {
                write!(f, "{PROGRAM_NAME}: {e}\nIllegal argument \"?\"")
            }
            SettingsError::BadValue(msg) | SettingsError::Usage(msg) => f.write_str(msg),
            SettingsError::IllegalSuboption(item) => write!(f, "Illegal suboption \"{item}\""),
        }
    }
}

impl std::error::Error for SettingsError {}

impl From<GetoptError> for SettingsError {
    fn from(e: GetoptError) -> Self {
        SettingsError::Getopt(e)
    }
}
