//! Server settings and the command line: mirrors memcached 1.6.18's
//! `settings_init()` and the option handling of `main()` in `memcached.c`.
//!
//! The flags, their defaults, their messages and their exit statuses are
//! memcached's, so that unit files, init scripts and test harnesses written
//! for memcached keep working. [`parse`] is pure (it neither prints nor
//! exits) so that all of this can be unit tested; [`parse_or_exit`] is the
//! thin wrapper `main` calls.
//!
//! Layout: `cmdline` scans the options (on `lexopt`) and runs memcached's
//! final consistency checks, `extended` handles `-o`, `usage` holds the
//! `-h`/`-i` texts and `error` the refusals. Values are read with the C
//! number conversions memcached uses ([`crate::cnum`]).

mod cmdline;

mod shown;
pub use shown::InertGroup;
mod error;
mod extended;
mod usage;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::Write;

pub use error::{GetoptError, SettingsError, EX_USAGE};
pub use usage::{license, usage};
mod config;
pub use config::{Protocol, Settings, TlsSettings, VERSION, VERSION_LINE};
mod state;

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Start the server.
    Run {
        /// The settings to run with (boxed: they dwarf the other variants).
        settings: Box<Settings>,
        /// Non-fatal notices memcached prints to stderr while reading the
        /// options (e.g. for `-t 65`), one entry per message.
        warnings: Vec<String>,
    },
    /// `-h`: print [`usage`] to stdout and exit 0.
    Help,
    /// `-V`: print [`VERSION_LINE`] to stdout and exit 0.
    Version,
    /// `-i`: print [`license`] to stdout and exit 0.
    License,
}

/// Parse the command line (`args` without the program name) the way
/// memcached 1.6.18 does, without printing or exiting.
///
/// Options are handled left to right, so `-V` after a bad option reports
/// the bad option, and a bad option after `-V` is never looked at.
pub fn parse<I>(args: I) -> Result<Parsed, SettingsError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut warnings = Vec::new();
    let action = cmdline::run(args, &mut warnings)?;
    Ok(match action {
        cmdline::Action::Run(settings) => Parsed::Run { settings, warnings },
        cmdline::Action::Help => Parsed::Help,
        cmdline::Action::Version => Parsed::Version,
        cmdline::Action::License => Parsed::License,
    })
}

/// Parse the command line (`args` without the program name), printing
/// help, version or memcached's error message and exiting where memcached
/// would: help, version and license go to stdout with status 0, errors to
/// stderr with [`SettingsError::exit_code`].
pub fn parse_or_exit<I>(args: I) -> Settings
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut warnings = Vec::new();
    let outcome = cmdline::run(args, &mut warnings);
    // memcached prints its warnings as it meets them, so they come out
    // even when a later option turns out to be fatal.
    for warning in &warnings {
        eprintln!("{warning}");
    }
    let text = match outcome {
        Ok(cmdline::Action::Run(settings)) => return *settings,
        Ok(cmdline::Action::Help) => usage(),
        Ok(cmdline::Action::Version) => format!("{VERSION_LINE}\n"),
        Ok(cmdline::Action::License) => license(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        }
    };
    // Not print!: `rmemcached -h | head -1` must not panic on a closed pipe.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    std::process::exit(0);
}
