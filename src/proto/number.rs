//! Number parsing with C's `strtol` family semantics: mirrors memcached's
//! `safe_strtoul`, `safe_strtol` and `safe_strtoull` in `util.c`.
//!
//! memcached accepts leading white space and a sign, requires the number
//! to end at white space or at the end of the token, and on a 64-bit build
//! parses 32-bit fields as 64-bit `long`s and then truncates them. Replies
//! must match byte for byte, so those quirks are kept on purpose: for
//! example `set k 0 0 4294967298` is a 2-byte set in memcached, and here.

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

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

/// `safe_strtoull`: a `u64`; a `-` is refused only when the wrapped result
/// would look negative as a signed number, as in memcached.
pub fn strtoull(s: &[u8]) -> Option<u64> {
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

/// `safe_strtoul`: parsed as a 64-bit `unsigned long`, then truncated to
/// 32 bits.
pub fn strtoul(s: &[u8]) -> Option<u32> {
    strtoull(s).map(|v| v as u32)
}

/// `safe_strtol`: parsed as a 64-bit `long` (out of range fails), then
/// truncated to 32 bits.
pub fn strtol(s: &[u8]) -> Option<i32> {
    strtoll(s).map(|v| v as i32)
}

/// `safe_strtoll`: a signed 64-bit number.
pub fn strtoll(s: &[u8]) -> Option<i64> {
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
            assert_eq!(strtoull(s.as_bytes()), *want, "{s:?}");
        }
    }

    #[test]
    fn strtol_truncates_like_a_64_bit_build() {
        assert_eq!(strtol(b"-1"), Some(-1));
        assert_eq!(strtol(b"4294967298"), Some(2));
        assert_eq!(strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(strtol(b"99999999999999999999"), None);
        assert_eq!(strtol(b"1.5"), None);
    }

    #[test]
    fn strtoul_truncates_and_refuses_negative() {
        assert_eq!(strtoul(b"4294967295"), Some(u32::MAX));
        assert_eq!(strtoul(b"4294967296"), Some(0));
        assert_eq!(strtoul(b"-1"), None);
    }
}
