//! The `rmemcached` binary: parse settings, start logging, prepare the
//! process, run the server (memcached's `main()`).

use std::io::Write as _;

use rmemcached::daemon;

fn main() {
    let settings = rmemcached::settings::parse_or_exit(std::env::args_os().skip(1));
    let mut logger = env_logger::Builder::new();
    logger.filter_level(rmemcached::server::level_filter(settings.verbose));
    logger.format(|buf, record| writeln!(buf, "{}", record.args()));
    logger.parse_default_env();
    logger.init();

    daemon::fix_malloc_threshold();
    daemon::raise_nofile(&settings);
    daemon::drop_privileges(&settings);
    if settings.daemonize {
        daemon::daemonize(&settings);
    }
    daemon::save_pid(&settings);
    let auth = rmemcached::auth::from_settings(&settings).unwrap_or_else(|(msg, code)| {
        eprintln!("{msg}");
        std::process::exit(code);
    });
    if let Err(msg) = rmemcached::accept::run(settings, auth) {
        eprintln!("{msg}");
        // memcached exits with EX_OSERR when it cannot listen.
        std::process::exit(71);
    }
}
