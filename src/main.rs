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
    // memcached's `init_sasl`: after dropping privileges, before -d.
    let sasl = settings.sasl.then(|| {
        rmemcached::sasl::init().unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        })
    });
    if settings.daemonize {
        daemon::daemonize(&settings);
    }
    daemon::save_pid(&settings);
    let auth = rmemcached::auth::from_settings(&settings).unwrap_or_else(|(msg, code)| {
        eprintln!("{msg}");
        std::process::exit(code);
    });
    let tls = tls_context(&settings);
    if let Err(msg) = rmemcached::accept::run(settings, auth, tls, sasl) {
        eprintln!("{msg}");
        // memcached exits with EX_OSERR when it cannot listen.
        std::process::exit(71);
    }
}

/// memcached's `ssl_init` at start: with `-Z`, the certificates must load,
/// or the process exits with `EX_USAGE` and memcached's message.
fn tls_context(settings: &rmemcached::settings::Settings) -> Option<rmemcached::tls::TlsContext> {
    use rmemcached::tls::TlsContext;
    if !settings.tls.enabled {
        return None;
    }
    if settings.port == 0 {
        eprintln!("ERROR: You cannot enable SSL without a TCP port.");
        std::process::exit(64);
    }
    for w in TlsContext::warnings(&settings.tls) {
        log::warn!("{w}");
    }
    match TlsContext::new(&settings.tls) {
        Ok(ctx) => Some(ctx),
        Err(msg) => {
            eprint!("{msg}");
            std::process::exit(64);
        }
    }
}
