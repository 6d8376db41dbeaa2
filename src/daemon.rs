//! Process set-up before serving: mirrors memcached's `daemon.c` and the
//! parts of `main()` that raise the file limit, drop root privileges and
//! write the pid file.

use std::fs;
use std::io::Write as _;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{self, Uid, User};

use crate::settings::Settings;

/// memcached's exit codes from `sysexits.h`.
const EX_USAGE: i32 = 64;
const EX_NOUSER: i32 = 67;
const EX_OSERR: i32 = 71;

fn die(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("{msg}");
    std::process::exit(code);
}

/// Raise `RLIMIT_NOFILE` so that `-c` connections fit, as memcached does.
pub fn raise_nofile(settings: &Settings) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        die(EX_OSERR, "failed to getrlimit number of files");
    };
    let want = settings.maxconns as u64 + 64;
    if soft >= want {
        return;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).is_err() {
        die(
            EX_OSERR,
            "failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.",
        );
    }
}

/// Root must name a user with `-u`; the server then becomes that user.
pub fn drop_privileges(settings: &Settings) {
    if !(Uid::current().is_root() || Uid::effective().is_root()) {
        return;
    }
    let Some(name) = settings.username.as_deref().filter(|n| !n.is_empty()) else {
        die(EX_USAGE, "can't run as root without the -u switch");
    };
    let user = match User::from_name(name) {
        Ok(Some(u)) => u,
        _ => die(
            EX_NOUSER,
            format_args!("can't find the user {name} to switch to"),
        ),
    };
    if let Err(e) = unistd::setgroups(&[]) {
        eprintln!("failed to drop supplementary groups: {e}");
        if e != nix::errno::Errno::EPERM {
            std::process::exit(EX_OSERR);
        }
    }
    if unistd::setgid(user.gid).is_err() || unistd::setuid(user.uid).is_err() {
        die(
            EX_OSERR,
            format_args!("failed to assume identity of user {name}"),
        );
    }
}

/// `-d`: detach from the terminal (memcached's `daemonize`). Must run
/// before any thread starts, since it forks.
pub fn daemonize(settings: &Settings) {
    // SAFETY: ignoring SIGHUP installs no handler code; it only sets the
    // disposition, which is what memcached does before daemon().
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let keep_stdio = settings.verbose > 0;
    if unistd::daemon(settings.maxcore, keep_stdio).is_err() {
        die(
            libc::EXIT_FAILURE,
            "failed to daemon() in order to daemonize",
        );
    }
}

/// `-P`: write the pid through a temporary file and a rename, as memcached's
/// `save_pid`.
pub fn save_pid(settings: &Settings) {
    let Some(path) = &settings.pid_file else {
        return;
    };
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let res = fs::File::create(&tmp)
        .and_then(|mut f| writeln!(f, "{}", std::process::id()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = res {
        eprintln!("Could not write the pid file {}: {e}", path.display());
    }
}

/// Remove the `-P` pid file at exit (memcached does so for a daemon).
pub fn remove_pid(settings: &Settings) {
    if let Some(path) = &settings.pid_file {
        if let Err(e) = fs::remove_file(path) {
            eprintln!("Could not remove the pid file {}: {e}", path.display());
        }
    }
}

/// Fix glibc's mmap threshold at its starting value, 128 KiB, so that every
/// allocation of that size or more (a large reply, a value in flight, a
/// large item) is its own mapping, given back to the system when freed.
/// glibc raises the threshold each time such a block is freed, after which
/// blocks of a megabyte come from the heap and leave holes that a later,
/// slightly larger block cannot use: 60 clients each made to hold one 1 MB
/// reply in turn left the process 60 MB larger, though no more than 6 MB
/// was held at any moment (see docs/ARCHITECTURE.md, "Memory bounds").
pub fn fix_malloc_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called from
    // main before any other thread exists.
    unsafe {
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) != 1 {
            log::warn!("mallopt(M_MMAP_THRESHOLD) failed");
        }
    }
}
