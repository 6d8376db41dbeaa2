//! C's string-to-number conversions as glibc performs them.
//!
//! memcached reads most flags with `atoi`/`atof`/`strtol` and the rest with
//! its own `safe_strto*` wrappers, and their quirks are visible to users:
//! `-p 11211x` is port 11211, `-t abc` is 0 threads (refused), and
//! `-o lru_crawler_tocrawl=-1` is refused while `-o hashpower=12x` is not.

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_space(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8))
}

/// What `strtol`/`strtoul`/`strtod` report: the value, whether `errno`
/// would be `ERANGE`, whether any digit was read (`endptr != str`), and
/// the text after the number (`endptr`; the whole input if no digits).
pub(super) struct Conv<'a, T> {
    pub(super) value: T,
    pub(super) range_error: bool,
    pub(super) digits: bool,
    pub(super) rest: &'a str,
}

/// The sign and magnitude of a leading integer, as the strto* family scans it.
struct Scan<'a> {
    negative: bool,
    magnitude: u64,
    overflow: bool,
    digits: bool,
    rest: &'a str,
}

fn scan_integer(s: &str, radix: u32) -> Scan<'_> {
    let t = skip_space(s);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    let mut len = 0;
    for d in t.chars().map_while(|c| c.to_digit(radix)) {
        len += 1; // digits are ASCII: one byte each
        match magnitude
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
    }
    Scan {
        negative,
        magnitude,
        overflow,
        digits: len > 0,
        rest: if len > 0 { &t[len..] } else { s },
    }
}

/// `strtol(s, &end, radix)` with a 64-bit `long`: saturates on overflow.
pub(super) fn strtol(s: &str, radix: u32) -> Conv<'_, i64> {
    let sc = scan_integer(s, radix);
    let signed = if sc.negative {
        -i128::from(sc.magnitude)
    } else {
        i128::from(sc.magnitude)
    };
    let (value, range_error) = match i64::try_from(signed) {
        Ok(v) if !sc.overflow => (v, false),
        _ if sc.negative => (i64::MIN, true),
        _ => (i64::MAX, true),
    };
    Conv {
        value,
        range_error,
        digits: sc.digits,
        rest: sc.rest,
    }
}

/// `strtoul(s, &end, 10)` with a 64-bit `unsigned long`: a minus sign
/// negates modulo 2^64, overflow saturates.
fn strtoul(s: &str) -> Conv<'_, u64> {
    let sc = scan_integer(s, 10);
    let (value, range_error) = if sc.overflow {
        (u64::MAX, true)
    } else if sc.negative {
        (sc.magnitude.wrapping_neg(), false)
    } else {
        (sc.magnitude, false)
    };
    Conv {
        value,
        range_error,
        digits: sc.digits,
        rest: sc.rest,
    }
}

/// `strtod(s, &end)`: the longest prefix that is a decimal float, `inf` or
/// `nan` (Rust's float grammar is the same for those forms).
fn strtod(s: &str) -> Conv<'_, f64> {
    let t = skip_space(s);
    let mut best = None;
    for end in (1..=t.len()).filter(|&end| t.is_char_boundary(end)) {
        if let Ok(v) = t[..end].parse::<f64>() {
            best = Some((v, end));
        }
    }
    match best {
        Some((value, end)) => Conv {
            value,
            // An overflowing literal becomes infinite; C flags that ERANGE.
            range_error: value.is_infinite() && !t[..end].contains(['n', 'N']),
            digits: true,
            rest: &t[end..],
        },
        None => Conv {
            value: 0.0,
            range_error: false,
            digits: false,
            rest: s,
        },
    }
}

/// `atoi`: glibc's `(int) strtol(s, NULL, 10)`, truncating to 32 bits.
pub(super) fn atoi(s: &str) -> i32 {
    strtol(s, 10).value as i32
}

/// `atof`: `strtod(s, NULL)`, 0 when there is no number.
pub(super) fn atof(s: &str) -> f64 {
    strtod(s).value
}

/// memcached's `safe_*` wrappers accept a number followed by nothing or by
/// whitespace.
fn ends_cleanly(rest: &str) -> bool {
    rest.as_bytes().first().is_none_or(|&b| is_c_space(b))
}

/// memcached's `safe_strtoul`: `None` where it returns false. Like it, a
/// value above 2^32 is accepted and truncated.
pub(super) fn safe_strtoul(s: &str) -> Option<u32> {
    let c = strtoul(s);
    if c.range_error || !c.digits || !ends_cleanly(c.rest) {
        return None;
    }
    // "-1" reads as 2^64-1: memcached refuses negatives only in that case.
    if (c.value as i64) < 0 && s.contains('-') {
        return None;
    }
    Some(c.value as u32)
}

/// memcached's `safe_strtol` into an `int32_t` (a `long` that fits is then
/// truncated, as the C assignment does).
pub(super) fn safe_strtol(s: &str) -> Option<i32> {
    let c = strtol(s, 10);
    if c.range_error || !c.digits || !ends_cleanly(c.rest) {
        return None;
    }
    Some(c.value as i32)
}

/// memcached's `safe_strtod`.
pub(super) fn safe_strtod(s: &str) -> Option<f64> {
    let c = strtod(s);
    if c.range_error || !c.digits || !ends_cleanly(c.rest) {
        return None;
    }
    Some(c.value)
}
