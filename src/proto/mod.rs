//! The wire protocols, as pure functions over bytes: mirrors memcached's
//! `proto_text.c`. Nothing here touches a socket.

pub mod admin;
pub mod get;
pub mod number;
pub mod text;
