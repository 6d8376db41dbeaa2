//! The part of Cyrus SASL's C interface (`<sasl/sasl.h>`) that `-S`
//! uses, loaded at run time from `libsasl2.so.2`, and the callbacks the
//! library calls back into. Every `unsafe` block of the SASL code is in
//! this file.
//!
//! The library is opened with `dlopen` (through `libloading`) rather than
//! linked, so that the server builds without libsasl2's headers and runs
//! without the library as long as `-S` is not given. It is never closed:
//! `sasl_server_init` registers process-wide state and plugins that live
//! as long as the process.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use super::defs::{callback_level, pwdb_check, InitError, LIBRARY};

// Result codes (`sasl.h`).
/// Success.
const SASL_OK: c_int = 0;
/// Another step is needed.
const SASL_CONTINUE: c_int = 1;
/// Generic failure.
pub const SASL_FAIL: c_int = -1;
/// Authorization failure (the password callback's "no").
const SASL_NOAUTHZ: c_int = -14;

// Callback ids.
const SASL_CB_LIST_END: c_ulong = 0;
const SASL_CB_LOG: c_ulong = 2;
const SASL_CB_GETCONFPATH: c_ulong = 5;
const SASL_CB_SERVER_USERDB_CHECKPASS: c_ulong = 0x8005;

/// `sasl_getprop`'s property for the authenticated user's name.
const SASL_USERNAME: c_int = 0;

/// memcached's service and application name: the library reads
/// `memcached.conf` from the configuration path, and a sasldb made with
/// `saslpasswd2 -a memcached` serves both servers.
const APP_NAME: &CStr = c"memcached";

/// An opaque `sasl_conn_t`.
#[repr(C)]
struct SaslConnT {
    _opaque: [u8; 0],
}

/// `sasl_callback_t`: `proc` is called with the arguments its `id` implies.
#[repr(C)]
struct Callback {
    id: c_ulong,
    proc_: *const c_void,
    context: *mut c_void,
}

type ServerInitFn = unsafe extern "C" fn(*const Callback, *const c_char) -> c_int;
type ServerNewFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const Callback,
    c_uint,
    *mut *mut SaslConnT,
) -> c_int;
type ListMechFn = unsafe extern "C" fn(
    *mut SaslConnT,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut *const c_char,
    *mut c_uint,
    *mut c_int,
) -> c_int;
type ServerStartFn = unsafe extern "C" fn(
    *mut SaslConnT,
    *const c_char,
    *const c_char,
    c_uint,
    *mut *const c_char,
    *mut c_uint,
) -> c_int;
type ServerStepFn = unsafe extern "C" fn(
    *mut SaslConnT,
    *const c_char,
    c_uint,
    *mut *const c_char,
    *mut c_uint,
) -> c_int;
type DisposeFn = unsafe extern "C" fn(*mut *mut SaslConnT);
type ErrDetailFn = unsafe extern "C" fn(*mut SaslConnT) -> *const c_char;
type ErrStringFn = unsafe extern "C" fn(c_int, *const c_char, *mut *const c_char) -> *const c_char;
type GetPropFn = unsafe extern "C" fn(*mut SaslConnT, c_int, *mut *const c_void) -> c_int;

/// The functions used, resolved once.
struct Api {
    server_init: ServerInitFn,
    server_new: ServerNewFn,
    listmech: ListMechFn,
    server_start: ServerStartFn,
    server_step: ServerStepFn,
    dispose: DisposeFn,
    errdetail: ErrDetailFn,
    errstring: ErrStringFn,
    getprop: GetPropFn,
}

/// What the callbacks read: fixed before `sasl_server_init`, read-only
/// after, so that a callback running on any worker thread needs no lock.
struct Config {
    /// `SASL_CONF_PATH` or the first of memcached's places that exists.
    conf_path: Option<CString>,
    /// `MEMCACHED_SASL_PWDB`: a `user:password` file checked before the
    /// library's own password check.
    pwdb: Option<std::path::PathBuf>,
}

/// What `sasl_server_init` and `sasl_server_new` are given.
#[derive(Debug, Default)]
pub struct Setup {
    /// The configuration directory (see [`super::conf_path`]); without
    /// one the library refuses to start.
    pub conf_path: Option<CString>,
    /// `MEMCACHED_SASL_PWDB`.
    pub pwdb: Option<std::path::PathBuf>,
    /// The host name, the server's default realm.
    pub hostname: Option<CString>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static SASL: OnceLock<Result<Sasl, InitError>> = OnceLock::new();

/// Cyrus SASL, loaded and initialised for this process (memcached's
/// `init_sasl`).
pub struct Sasl {
    api: Api,
    /// `gethostname`, passed to `sasl_server_new` as the server's name
    /// (the default realm) as memcached does; `None` when unknown.
    hostname: Option<CString>,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

impl Sasl {
    /// Load `libsasl2.so.2`, then call `sasl_server_init` with memcached's
    /// callbacks and what `setup` gives (called once the library has
    /// loaded); once per process, later calls return the first result.
    pub fn init(setup: impl FnOnce() -> Setup) -> Result<&'static Sasl, &'static InitError> {
        SASL.get_or_init(|| {
            let api = load()?;
            let Setup {
                conf_path,
                pwdb,
                hostname,
            } = setup();
            let config = CONFIG.get_or_init(|| Config { conf_path, pwdb });
            let mut callbacks = Vec::new();
            if config.pwdb.is_some() {
                callbacks.push(Callback {
                    id: SASL_CB_SERVER_USERDB_CHECKPASS,
                    proc_: checkpass as *const c_void,
                    context: ptr::null_mut(),
                });
            }
            callbacks.push(Callback {
                id: SASL_CB_LOG,
                proc_: log_message as *const c_void,
                context: ptr::null_mut(),
            });
            callbacks.push(Callback {
                id: SASL_CB_GETCONFPATH,
                proc_: getconfpath as *const c_void,
                context: ptr::null_mut(),
            });
            callbacks.push(Callback {
                id: SASL_CB_LIST_END,
                proc_: ptr::null(),
                context: ptr::null_mut(),
            });
            // The library keeps the pointer to the list: it must live as
            // long as the process.
            let callbacks: &'static [Callback] = Vec::leak(callbacks);
            // SAFETY: `server_init` has sasl_server_init's signature (it was
            // resolved by that name from libsasl2); the callback list is
            // terminated by SASL_CB_LIST_END, never freed, and each `proc_`
            // is an `extern "C"` function with the signature its id calls
            // for; APP_NAME is NUL-terminated and static.
            let rc = unsafe { (api.server_init)(callbacks.as_ptr(), APP_NAME.as_ptr()) };
            if rc != SASL_OK {
                return Err(InitError::Init(errstring(&api, rc)));
            }
            Ok(Sasl { api, hostname })
        })
        .as_ref()
    }

    /// A new server-side exchange (`sasl_server_new`, as memcached's
    /// `init_sasl_conn` makes it); `None` if the library refuses.
    pub fn new_conn(&'static self) -> Option<ServerConn> {
        let fqdn = self.hostname.as_deref().map_or(ptr::null(), CStr::as_ptr);
        let mut conn: *mut SaslConnT = ptr::null_mut();
        // SAFETY: the library was initialised by `init` (a `Sasl` exists
        // only then); every string is NUL-terminated or null, which
        // sasl_server_new allows for all but the service; `conn` is a
        // valid place for the new connection's pointer.
        let rc = unsafe {
            (self.api.server_new)(
                APP_NAME.as_ptr(),
                fqdn,
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ptr::null(),
                0,
                &mut conn,
            )
        };
        match NonNull::new(conn) {
            Some(ptr) if rc == SASL_OK => Some(ServerConn { ptr, sasl: self }),
            other => {
                if let Some(ptr) = other {
                    // A connection made with an error code still needs
                    // disposing of.
                    drop(ServerConn { ptr, sasl: self });
                }
                log::info!(
                    "Failed to initialize SASL conn: {}",
                    errstring(&self.api, rc)
                );
                None
            }
        }
    }
}

/// One connection's exchange with the library (a `sasl_conn_t`), disposed
/// of when dropped.
pub struct ServerConn {
    ptr: NonNull<SaslConnT>,
    sasl: &'static Sasl,
}

// SAFETY: a sasl_conn_t is plain heap state owned by this value; Cyrus
// SASL lets a connection be used from any thread as long as one thread at
// a time uses it (memcached's workers use theirs that way), and every
// method takes `&mut self` or, for reads, is reached only through the
// owner. Sending the owner to another thread is therefore sound.
unsafe impl Send for ServerConn {}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConn").finish_non_exhaustive()
    }
}

/// What one step of an exchange came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Authenticated.
    Done,
    /// Send the client this challenge and wait for its next step.
    Continue(Vec<u8>),
    /// Failed, with the library's result code.
    Failed(i32),
}

/// Copy `len` bytes the library returned at `p` (null with 0 is empty).
///
/// # Safety
/// `p` must be null or point to `len` readable bytes.
unsafe fn copy_out(p: *const c_char, len: c_uint) -> Vec<u8> {
    if p.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: the caller promises `len` readable bytes at `p`.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }.to_vec()
}

/// A step's result code and reply as a [`Step`].
fn outcome(rc: c_int, reply: Vec<u8>) -> Step {
    match rc {
        SASL_OK => Step::Done,
        SASL_CONTINUE => Step::Continue(reply),
        _ => Step::Failed(rc),
    }
}

/// A NUL-terminated copy of `b`, cut at a NUL inside it as C would read it.
fn c_string(b: &[u8]) -> CString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).expect("no NUL before the end")
}

impl ServerConn {
    /// The mechanisms on offer, separated by spaces (`sasl_listmech`);
    /// the library's code if it fails.
    pub fn list_mechs(&mut self) -> Result<Vec<u8>, i32> {
        let mut out: *const c_char = ptr::null();
        let mut len: c_uint = 0;
        // SAFETY: `ptr` is a live connection (disposed of only in Drop),
        // used by this thread alone (`&mut self`); the prefix, separator
        // and suffix are static C strings; the user and count may be
        // null. On success `out` points to `len` bytes the connection owns
        // until its next call, copied here.
        unsafe {
            let rc = (self.sasl.api.listmech)(
                self.ptr.as_ptr(),
                ptr::null(),
                c"".as_ptr(),
                c" ".as_ptr(),
                c"".as_ptr(),
                &mut out,
                &mut len,
                ptr::null_mut(),
            );
            if rc != SASL_OK {
                return Err(rc);
            }
            Ok(copy_out(out, len))
        }
    }

    /// `sasl_server_start` with mechanism `mech` and the client's first
    /// message (none when empty, as memcached passes it).
    pub fn start(&mut self, mech: &[u8], data: &[u8]) -> Step {
        let mech = c_string(mech);
        let (mut out, mut outlen): (*const c_char, c_uint) = (ptr::null(), 0);
        let input = if data.is_empty() {
            ptr::null()
        } else {
            data.as_ptr().cast::<c_char>()
        };
        // SAFETY: a live connection used by this thread alone (see
        // `list_mechs`); `mech` is NUL-terminated; `input` is null or
        // points to `data.len()` bytes (the caller bounds it far below
        // `c_uint::MAX`); the reply, `outlen` bytes at `out` (or null)
        // that the connection owns until its next call, is copied here.
        let (rc, reply) = unsafe {
            let rc = (self.sasl.api.server_start)(
                self.ptr.as_ptr(),
                mech.as_ptr(),
                input,
                data.len() as c_uint,
                &mut out,
                &mut outlen,
            );
            (rc, copy_out(out, outlen))
        };
        outcome(rc, reply)
    }

    /// `sasl_server_step` with the client's next message.
    pub fn step(&mut self, data: &[u8]) -> Step {
        let (mut out, mut outlen): (*const c_char, c_uint) = (ptr::null(), 0);
        let input = if data.is_empty() {
            ptr::null()
        } else {
            data.as_ptr().cast::<c_char>()
        };
        // SAFETY: as in `start`.
        let (rc, reply) = unsafe {
            let rc = (self.sasl.api.server_step)(
                self.ptr.as_ptr(),
                input,
                data.len() as c_uint,
                &mut out,
                &mut outlen,
            );
            (rc, copy_out(out, outlen))
        };
        outcome(rc, reply)
    }

    /// The user name the exchange authenticated (`sasl_getprop`).
    pub fn username(&self) -> Option<String> {
        let mut v: *const c_void = ptr::null();
        // SAFETY: a live connection; SASL_USERNAME's value is a
        // NUL-terminated string the connection owns, copied at once.
        unsafe {
            let rc = (self.sasl.api.getprop)(self.ptr.as_ptr(), SASL_USERNAME, &mut v);
            (rc == SASL_OK && !v.is_null())
                .then(|| CStr::from_ptr(v.cast()).to_string_lossy().into_owned())
        }
    }

    /// The library's account of the last failure (`sasl_errdetail`).
    pub fn errdetail(&self) -> String {
        // SAFETY: a live connection; the text is NUL-terminated, owned by
        // the connection, and copied at once.
        unsafe {
            let p = (self.sasl.api.errdetail)(self.ptr.as_ptr());
            if p.is_null() {
                return String::new();
            }
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

impl Drop for ServerConn {
    fn drop(&mut self) {
        let mut p = self.ptr.as_ptr();
        // SAFETY: `p` came from sasl_server_new and is disposed of once,
        // here; nothing uses it afterwards.
        unsafe { (self.sasl.api.dispose)(&mut p) };
    }
}

/// `sasl_errstring`: the library's text for a result code.
fn errstring(api: &Api, rc: c_int) -> String {
    // SAFETY: sasl_errstring takes any code and returns a static string
    // (or null); a null language list means US-ASCII.
    unsafe {
        let p = (api.errstring)(rc, ptr::null(), ptr::null_mut());
        if p.is_null() {
            return format!("SASL error {rc}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Open the library and resolve the functions.
fn load() -> Result<Api, InitError> {
    let missing = |e: libloading::Error| {
        // libloading's own text is short ("dlopen failed"); the loader's
        // message is its source.
        let why = match std::error::Error::source(&e) {
            Some(detail) => format!("{e}: {detail}"),
            None => e.to_string(),
        };
        InitError::Load(why)
    };
    // SAFETY: loading libsasl2 runs its initialisers, which only set up
    // the library's own state; the library is kept loaded for good (the
    // handle is forgotten below), so the function pointers taken from it
    // never dangle. Each symbol is read with the type its C prototype in
    // <sasl/sasl.h> has.
    unsafe {
        let lib = libloading::Library::new(LIBRARY).map_err(missing)?;
        let api = Api {
            server_init: *lib.get(b"sasl_server_init\0").map_err(missing)?,
            server_new: *lib.get(b"sasl_server_new\0").map_err(missing)?,
            listmech: *lib.get(b"sasl_listmech\0").map_err(missing)?,
            server_start: *lib.get(b"sasl_server_start\0").map_err(missing)?,
            server_step: *lib.get(b"sasl_server_step\0").map_err(missing)?,
            dispose: *lib.get(b"sasl_dispose\0").map_err(missing)?,
            errdetail: *lib.get(b"sasl_errdetail\0").map_err(missing)?,
            errstring: *lib.get(b"sasl_errstring\0").map_err(missing)?,
            getprop: *lib.get(b"sasl_getprop\0").map_err(missing)?,
        };
        std::mem::forget(lib);
        Ok(api)
    }
}

/// `SASL_CB_LOG`: the library's messages go to the log at a level after
/// memcached's `sasl_log` (see [`callback_level`]).
extern "C" fn log_message(_context: *mut c_void, level: c_int, message: *const c_char) -> c_int {
    if message.is_null() {
        return SASL_OK;
    }
    // SAFETY: the library passes a NUL-terminated message valid for the
    // duration of the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if let Some(l) = callback_level(level) {
        log::log!(l, "SASL (severity {level}): {text}");
    }
    SASL_OK
}

/// `SASL_CB_GETCONFPATH`: where the library looks for `memcached.conf`.
extern "C" fn getconfpath(_context: *mut c_void, path: *mut *const c_char) -> c_int {
    let found = CONFIG.get().and_then(|c| c.conf_path.as_deref());
    let Some(p) = found else {
        return SASL_FAIL;
    };
    // SAFETY: the library passes a valid place for the answer; the string
    // lives in a static for the life of the process (the library reads it
    // and does not free it, as with memcached's `getenv` result).
    unsafe { *path = p.as_ptr() };
    SASL_OK
}

/// `SASL_CB_SERVER_USERDB_CHECKPASS` under `MEMCACHED_SASL_PWDB`
/// (memcached's `sasl_server_userdb_checkpass`).
extern "C" fn checkpass(
    _conn: *mut SaslConnT,
    _context: *mut c_void,
    user: *const c_char,
    pass: *const c_char,
    passlen: c_uint,
    _propctx: *mut c_void,
) -> c_int {
    let Some(file) = CONFIG.get().and_then(|c| c.pwdb.as_deref()) else {
        return SASL_NOAUTHZ;
    };
    if user.is_null() || (pass.is_null() && passlen > 0) {
        return SASL_NOAUTHZ;
    }
    // SAFETY: the library passes a NUL-terminated user name and `passlen`
    // bytes of password, both valid for the duration of the call.
    let (user, pass) = unsafe {
        let pass = if passlen == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(pass.cast::<u8>(), passlen as usize)
        };
        (CStr::from_ptr(user).to_bytes(), pass)
    };
    if pwdb_check(file, user, pass) {
        SASL_OK
    } else {
        SASL_NOAUTHZ
    }
}
