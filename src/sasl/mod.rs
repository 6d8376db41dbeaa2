//! SASL authentication (`-S`): mirrors memcached's `sasl_defs.c`
//! (`init_sasl` and its callbacks) over Cyrus SASL, the library memcached
//! uses, loaded at run time (`sasl/ffi.rs` holds the C interface and
//! every `unsafe` block; `sasl/defs.rs` the pure rules around it).
//!
//! What memcached does, and so this module:
//! - **Once per process**, `sasl_server_init` with the application name
//!   `memcached`, so the library reads `memcached.conf` (`mech_list`,
//!   `sasldb_path`, `pwcheck_method`, ...) from the configuration path.
//! - **The configuration path** is `SASL_CONF_PATH`, else
//!   `/etc/sasl/memcached.conf` or `/etc/sasl2/memcached.conf` as
//!   [`conf_path`] finds them; with none, initialisation fails and the
//!   server does not start ("Error initializing sasl.").
//! - **`MEMCACHED_SASL_PWDB`** names a file of `user:password` lines
//!   checked before the library's own password check (memcached's
//!   `--enable-sasl-pwdb` build; Debian's memcached is built without it,
//!   so there the variable does nothing).
//! - **The library's log** goes to the server's log, at memcached's
//!   verbosity for each severity ([`callback_level`]).
//!
//! The binary protocol's three SASL commands are in
//! `proto::binary::sasl`; a connection's exchange is a [`SaslSession`].

mod defs;
mod ffi;

use std::ffi::CString;
use std::path::PathBuf;

pub use defs::{callback_level, conf_path, pwdb_check, pwdb_matches, InitError, LIBRARY};
pub use ffi::{Sasl, ServerConn, Setup, Step, SASL_FAIL};

/// memcached's `init_sasl`: load the library and initialise it from the
/// environment (`SASL_CONF_PATH`, `MEMCACHED_SASL_PWDB`) and the host
/// name. Once per process; later calls return the first result.
pub fn init() -> Result<&'static Sasl, &'static InitError> {
    let sasl = Sasl::init(setup);
    match &sasl {
        Ok(_) => log::info!("Initialized SASL."),
        Err(InitError::Init(why)) => log::warn!("sasl_server_init: {why}"),
        Err(_) => {}
    }
    sasl
}

/// What [`init`] gives the library, read from the environment once it
/// has loaded.
fn setup() -> Setup {
    let pwdb = std::env::var_os("MEMCACHED_SASL_PWDB").map(PathBuf::from);
    if pwdb.is_none() {
        log::info!("INFO: MEMCACHED_SASL_PWDB not specified. Internal passwd database disabled");
    }
    let env = std::env::var_os("SASL_CONF_PATH").map(PathBuf::from);
    let conf = conf_path(env, |p| p.exists());
    match &conf {
        Some(p) => log::info!("Reading configuration from: <{}>", p.display()),
        // memcached says this only at -v; it is why the start fails.
        None => log::warn!(
            "Failed to locate a config path (set SASL_CONF_PATH, or create \
             /etc/sasl2/memcached.conf)"
        ),
    }
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| CString::new(h.into_encoded_bytes()).ok())
        .filter(|h| !h.is_empty());
    if hostname.is_none() {
        log::info!("Error discovering hostname for SASL");
    }
    Setup {
        conf_path: conf.and_then(|p| CString::new(p.into_os_string().into_encoded_bytes()).ok()),
        pwdb,
        hostname,
    }
}

/// One connection's SASL state (memcached's `c->sasl_conn`,
/// `c->sasl_started` and `c->authenticated`), held by the connection's
/// protocol session and touched only by the worker that owns it.
#[derive(Debug, Default)]
pub struct SaslSession {
    /// The library's exchange, made on the first SASL command and disposed
    /// of with the connection.
    pub conn: Option<ServerConn>,
    /// `SASL_AUTH` started an exchange (`SASL_STEP` needs one).
    pub started: bool,
    /// The client has authenticated.
    pub authenticated: bool,
}
