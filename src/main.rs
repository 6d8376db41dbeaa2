//! The `rmemcached` binary: parse settings, start logging, run the server.

fn main() {
    let settings = rmemcached::settings::parse_or_exit(std::env::args_os().skip(1));
    println!("{settings:?}");
}
