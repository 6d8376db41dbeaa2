//! The wire protocols, as pure functions over bytes: mirrors memcached's
//! `proto_text.c` and `proto_bin.c`. Nothing here touches a socket.

pub mod admin;
pub mod binary;
pub mod get;
pub mod meta;
pub mod number;
pub mod text;
