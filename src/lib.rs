//! rmemcached: a memcached server on mio.
#![deny(missing_docs, rust_2018_idioms)]

pub mod settings;
