//! C's string-to-number conversions, shared by the command line and the
//! protocols: glibc's `atoi`, `atof`, `strtol` and `strtod`, and
//! memcached's `safe_strto*` wrappers from `util.c`.
//!
//! Their quirks are visible to users, so they are kept on purpose. On the
//! command line, `-p 11211x` is port 11211, `-t abc` is 0 threads
//! (refused), and `-o lru_crawler_tocrawl=-1` is refused while
//! `-o hashpower=12x` is not. In the protocols, memcached accepts leading
//! white space and a sign, requires the number to end at white space or at
//! the end of the token, and on a 64-bit build parses 32-bit fields as
//! 64-bit `long`s and then truncates them: `set k 0 0 4294967298` is a
//! 2-byte set in memcached, and here.

// --- glibc --------------------------------------------------------------

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
pub struct Conv<'a, T> {
    /// The number read (saturated on overflow).
    pub value: T,
    /// `errno` would be `ERANGE`.
    pub range_error: bool,
    /// At least one digit was read.
    pub digits: bool,
    /// The text after the number.
    pub rest: &'a str,
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
pub fn strtol(s: &str, radix: u32) -> Conv<'_, i64> {
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
pub fn atoi(s: &str) -> i32 {
    strtol(s, 10).value as i32
}

/// `atof`: `strtod(s, NULL)`, 0 when there is no number.
pub fn atof(s: &str) -> f64 {
    strtod(s).value
}

/// memcached's `safe_*` wrappers accept a number followed by nothing or by
/// whitespace.
fn ends_cleanly(rest: &str) -> bool {
    rest.as_bytes().first().is_none_or(|&b| is_c_space(b))
}

/// memcached's `safe_strtod`.
pub fn safe_strtod(s: &str) -> Option<f64> {
    let c = strtod(s);
    if c.range_error || !c.digits || !ends_cleanly(c.rest) {
        return None;
    }
    Some(c.value)
}

// --- memcached's safe_strto* ------------------------------------------------

/// The digits of a `strto*` call: `(negative, magnitude, rest)`, or `None`
/// when there are no digits or the magnitude overflows `u64`.
fn scan(s: &[u8]) -> Option<(bool, u64, &[u8])> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((neg, v, &s[i..]))
}

/// What may follow the digits: nothing, or white space.
fn ends_well(rest: &[u8]) -> bool {
    rest.first().is_none_or(|&b| is_c_space(b))
}

/// memcached's `safe_strtoull`: a `u64`; a `-` is refused only when the wrapped result
/// would look negative as a signed number, as in memcached.
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    let (neg, mag, rest) = scan(s)?;
    if !ends_well(rest) {
        return None;
    }
    let v = if neg { mag.wrapping_neg() } else { mag };
    if (v as i64) < 0 && s.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// memcached's `safe_strtoul`: parsed as a 64-bit `unsigned long`, then truncated to
/// 32 bits.
pub fn safe_strtoul(s: &[u8]) -> Option<u32> {
    safe_strtoull(s).map(|v| v as u32)
}

/// memcached's `safe_strtol`: parsed as a 64-bit `long` (out of range fails), then
/// truncated to 32 bits.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    safe_strtoll(s).map(|v| v as i32)
}

/// memcached's `safe_strtoll`: a signed 64-bit number.
pub fn safe_strtoll(s: &[u8]) -> Option<i64> {
    let (neg, mag, rest) = scan(s)?;
    if !ends_well(rest) {
        return None;
    }
    if neg {
        if mag > i64::MAX as u64 + 1 {
            return None;
        }
        Some((mag as i64).wrapping_neg())
    } else {
        i64::try_from(mag).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_cases() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("42", Some(42)),
            ("+7", Some(7)),
            (" 9", Some(9)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("-1", None),
            ("-0", Some(0)),
            ("12abc", None),
            ("12 abc", Some(12)),
            ("12\r", Some(12)),
            ("", None),
            ("-", None),
            ("abc", None),
        ];
        for (s, want) in cases {
            assert_eq!(safe_strtoull(s.as_bytes()), *want, "{s:?}");
        }
    }

    #[test]
    fn strtol_truncates_like_a_64_bit_build() {
        assert_eq!(safe_strtol(b"-1"), Some(-1));
        assert_eq!(safe_strtol(b"4294967298"), Some(2));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"99999999999999999999"), None);
        assert_eq!(safe_strtol(b"1.5"), None);
    }

    #[test]
    fn strtoul_truncates_and_refuses_negative() {
        assert_eq!(safe_strtoul(b"4294967295"), Some(u32::MAX));
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"-1"), None);
    }
}
