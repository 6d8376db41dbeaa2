//! A command line cut into tokens, as memcached's `tokenize_command` cuts
//! it (`proto_text.c`). The text and meta protocols and the `-Y`
//! authentication share it.

/// memcached's `MAX_TOKENS`: a line is cut into at most 23 tokens plus the
/// terminal one; `get` re-tokenizes the rest to take any number of keys.
pub const MAX_TOKENS: usize = 24;

/// The tokens of one line, as memcached's `tokenize_command` cuts them:
/// split on single spaces only, at most `MAX_TOKENS - 1` tokens, and the
/// unread `rest` when the limit was hit.
#[derive(Debug)]
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    len: usize,
    /// Text after the last token when the line held more tokens than fit.
    pub rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// Tokenize `line` (already stripped of `\r\n`).
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            toks: [&[]; MAX_TOKENS],
            len: 0,
            rest: None,
        };
        let mut s = 0;
        let mut e = 0;
        while e < line.len() {
            if line[e] == b' ' {
                if s != e {
                    t.toks[t.len] = &line[s..e];
                    t.len += 1;
                    if t.len == MAX_TOKENS - 1 {
                        e += 1;
                        s = e;
                        break;
                    }
                }
                s = e + 1;
            }
            e += 1;
        }
        if s != e {
            t.toks[t.len] = &line[s..e];
            t.len += 1;
        }
        if e < line.len() {
            t.rest = Some(&line[e..]);
        }
        t
    }

    /// memcached's `ntokens`: the real tokens plus the terminal one.
    pub fn ntokens(&self) -> usize {
        self.len + 1
    }

    /// Token `i`, or an empty slice past the end (memcached's terminal
    /// token has length 0).
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            self.toks[i]
        } else {
            &[]
        }
    }

    /// The real tokens.
    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.toks[..self.len]
    }
}
