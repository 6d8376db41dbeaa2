//! The binary protocol's SASL commands under `-S`: memcached's
//! `authenticated`, `init_sasl_conn`, `bin_list_sasl_mechs`,
//! `process_bin_sasl_auth` and `process_bin_complete_sasl_auth`
//! (`proto_bin.c`). The library itself is [`crate::sasl`].
//!
//! Until a connection has authenticated, only `VERSION` and the three
//! SASL commands run; anything else is answered "Auth failure." and the
//! connection is closed. `SASL_LIST_MECHS` lists the mechanisms;
//! `SASL_AUTH` (key: the mechanism, value: the client's first message)
//! starts an exchange and `SASL_STEP` continues it. An exchange that
//! needs another step is answered with status `AUTH_CONTINUE` and the
//! server's challenge; one that succeeds with "Authenticated".
//!
//! As in memcached, every SASL command first marks the connection
//! unauthenticated (`init_sasl_conn`), so listing the mechanisms again, or
//! a failed new exchange, takes an authenticated connection's rights
//! away until it authenticates again.

use std::sync::atomic::Ordering;

use super::packet::{error, header, op, respond, Status};
use crate::cache::items::mc_ntotal;
use crate::cache::StoreMode;
use crate::proto::action::{Action, BinReq, Completion, PendingStore};
use crate::proto::ctx::Ctx;
use crate::proto::session::Session;
use crate::sasl::{ServerConn, Step, SASL_FAIL};

/// The longest mechanism name taken (memcached's `MAX_SASL_MECH_LEN`).
pub const MAX_MECH_LEN: usize = 32;

/// memcached's `authenticated()`: whether a request with this opcode (as
/// sent: a quiet opcode is not its loud twin) may run now.
pub fn allowed(opcode: u8, sess: &Session) -> bool {
    matches!(
        opcode,
        op::SASL_LIST_MECHS | op::SASL_AUTH | op::SASL_STEP | op::VERSION
    ) || sess.sasl.authenticated
}

/// `init_sasl_conn`: forget any earlier authentication, and make the
/// library's side of the exchange the first time. `None` when the library
/// has none to give (every exchange then fails, as memcached's does with
/// a null `sasl_conn`).
fn init_conn<'s>(ctx: &Ctx<'_>, sess: &'s mut Session) -> Option<&'s mut ServerConn> {
    let s = &mut sess.sasl;
    s.authenticated = false;
    if s.conn.is_none() {
        s.conn = ctx.sasl.and_then(|lib| lib.new_conn());
    }
    s.conn.as_mut()
}

/// `SASL_LIST_MECHS`: the mechanisms, separated by spaces.
pub fn list_mechs(ctx: &Ctx<'_>, sess: &mut Session, req: BinReq, out: &mut Vec<u8>) {
    match init_conn(ctx, sess).map(|c| c.list_mechs()) {
        Some(Ok(mechs)) => respond(out, req, 0, &mechs),
        failed => {
            log::info!("Failed to list SASL mechanisms ({failed:?})");
            error(out, req, Status::AuthError);
        }
    }
}

/// `SASL_AUTH` or `SASL_STEP` with the mechanism `mech` and `vlen` bytes
/// of data to come: check the sizes, then have the connection read the
/// data (memcached reads it into an item, whose limits it meets here).
pub fn read_data(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    req: BinReq,
    mech: &[u8],
    vlen: usize,
    out: &mut Vec<u8>,
) -> Action {
    if mech.len() > MAX_MECH_LEN {
        error(out, req, Status::Einval);
        return Action::Swallow(vlen);
    }
    // memcached's item for the data must not be chunked: no larger than
    // the largest slab chunk (and so than `-I`).
    if mc_ntotal(mech.len(), 0, vlen, ctx.settings.use_cas) > ctx.settings.slab_chunk_size_max {
        error(out, req, Status::Enomem);
        return Action::Swallow(vlen);
    }
    Action::Nread(PendingStore {
        mode: StoreMode::Set,
        key: sess.key_copy(mech),
        flags: 0,
        exptime: 0,
        cas: 0,
        vlen,
        done: Completion::Sasl(req),
    })
}

/// The data of a `SASL_AUTH` or `SASL_STEP` has arrived: run the step
/// and answer it (`process_bin_complete_sasl_auth`). A finished exchange,
/// passed or failed, counts in `auth_cmds`, a failed one in `auth_errors`.
pub fn complete(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    req: BinReq,
    mech: &[u8],
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let started = sess.sasl.started;
    let step = match (req.opcode, init_conn(ctx, sess)) {
        (op::SASL_AUTH, conn) => {
            let step = conn.map_or(Step::Failed(SASL_FAIL), |c| c.start(mech, data));
            sess.sasl.started = matches!(step, Step::Done | Step::Continue(_));
            step
        }
        (_, Some(c)) if started => c.step(data),
        _ => {
            log::info!("SASL_STEP called but sasl_server_start not called for this connection!");
            Step::Failed(SASL_FAIL)
        }
    };
    let s = &ctx.stats;
    match step {
        Step::Done => {
            sess.sasl.authenticated = true;
            let user = sess.sasl.conn.as_ref().and_then(ServerConn::username);
            log::info!("SASL: authenticated as <{}>", user.unwrap_or_default());
            respond(out, req, 0, b"Authenticated");
            s.auth_cmds.fetch_add(1, Ordering::Relaxed);
        }
        Step::Continue(challenge) => {
            header(out, req, Status::AuthContinue, 0, 0, challenge.len(), 0);
            out.extend_from_slice(&challenge);
        }
        Step::Failed(rc) => {
            let detail = sess.sasl.conn.as_ref().map(ServerConn::errdetail);
            log::info!(
                "SASL: authentication failed ({rc}): {}",
                detail.unwrap_or_default()
            );
            error(out, req, Status::AuthError);
            s.auth_cmds.fetch_add(1, Ordering::Relaxed);
            s.auth_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
