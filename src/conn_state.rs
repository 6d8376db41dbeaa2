//! The states of a connection: memcached's `enum conn_states`, with
//! memcached's names, as `-vvv` logs them and `stats conns` shows them.
//! The machine that moves through them is [`crate::conn`].

/// The states of a connection, memcached's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// A listening socket (the main thread's accept loop).
    Listening,
    /// Ready for the next command: reset per-command state.
    NewCmd,
    /// Waiting for the socket to become readable.
    Waiting,
    /// Reading from the socket.
    Read,
    /// A command line may be in the buffer: parse and run it.
    ParseCmd,
    /// Reading the value of a store command.
    Nread,
    /// Discarding the value of a store command that cannot be stored.
    Swallow,
    /// Writing a simple reply. memcached uses it for single-line replies;
    /// here every reply goes through `Mwrite`, so it is never entered.
    Write,
    /// Writing queued replies (several commands' worth, or UDP datagrams).
    Mwrite,
    /// Done: the worker closes and frees the connection.
    Closing,
    /// A `watch` connection: it reads nothing more, and writes the log
    /// lines its watcher's buffer collects.
    Watch,
}

impl ConnState {
    const ALL: [ConnState; 11] = [
        ConnState::Listening,
        ConnState::NewCmd,
        ConnState::Waiting,
        ConnState::Read,
        ConnState::ParseCmd,
        ConnState::Nread,
        ConnState::Swallow,
        ConnState::Write,
        ConnState::Mwrite,
        ConnState::Closing,
        ConnState::Watch,
    ];

    /// The state as a small number (for `stats conns`, which keeps it in an atomic).
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The state numbered `i` by [`ConnState::index`].
    pub fn from_index(i: u8) -> ConnState {
        Self::ALL[usize::from(i).min(Self::ALL.len() - 1)]
    }

    /// memcached's name for the state, as `-vvv` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Listening => "conn_listening",
            ConnState::NewCmd => "conn_new_cmd",
            ConnState::Waiting => "conn_waiting",
            ConnState::Read => "conn_read",
            ConnState::ParseCmd => "conn_parse_cmd",
            ConnState::Nread => "conn_nread",
            ConnState::Swallow => "conn_swallow",
            ConnState::Write => "conn_write",
            ConnState::Mwrite => "conn_mwrite",
            ConnState::Closing => "conn_closing",
            ConnState::Watch => "conn_watch",
        }
    }
}
