//! A store's value has arrived, or cannot be taken: the reply, in the
//! request's protocol (memcached's `complete_nread`, which hands over to
//! `complete_nread_ascii` or `complete_nread_binary`).

use std::sync::atomic::Ordering;

use crate::cache::StoreMode;

use super::action::{Completion, PendingStore};
use super::ctx::Ctx;
use super::session::{out_string, Session};
use super::store::Refusal;

/// The value of a store has arrived: `data` is the `vlen` bytes read for
/// it. The key's buffer goes back to the session for the next store, so
/// that a store allocates nothing once the connection has warmed up.
pub fn complete_nread(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    p: PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    match &p.done {
        Completion::Text => super::text::complete_store(ctx, sess, &p, data, out),
        Completion::Binary(req) => super::binary::complete_store(ctx, *req, &p, data, out),
        Completion::Meta(m) => super::meta::complete_mset(ctx, m, &p, data, out),
        Completion::Sasl(req) => super::binary::complete_sasl(ctx, sess, *req, &p.key, data, out),
    }
    sess.key_buf = p.key;
}

/// A store whose value found the in-flight pool spent before its first
/// byte was read (`mem_budget`): the reply memcached gives when it cannot
/// allocate the item, in the request's protocol, and a set removes the
/// old value, as there. The value is then swallowed. SASL data refused
/// so gets the binary out-of-memory error.
pub fn refuse_store(ctx: &Ctx<'_>, sess: &mut Session, p: PendingStore, out: &mut Vec<u8>) {
    // SASL data asked for no store: nothing to count or remove.
    if !matches!(p.done, Completion::Sasl(_)) {
        ctx.stats.store_no_memory.fetch_add(1, Ordering::Relaxed);
        let meta = matches!(p.done, Completion::Meta(_));
        if p.mode == StoreMode::Set || meta {
            ctx.cache.delete(&p.key);
        }
    }
    match p.done {
        Completion::Binary(req) | Completion::Sasl(req) => super::binary::refuse_store(req, out),
        Completion::Meta(_) => {
            // An error is sent even in quiet mode.
            out.extend_from_slice(Refusal::NoMemory.text());
            out.extend_from_slice(b"\r\n");
        }
        Completion::Text => out_string(sess, out, Refusal::NoMemory.text()),
    }
    sess.key_buf = p.key;
}
