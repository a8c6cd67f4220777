//! Python text semantics that IM's RADL library relies on.
//!
//! IM's parser is written in Python, so what it accepts and how it prints depends on
//! Python's own rules: `\d` and `\w` in `re` are Unicode-aware, `int()` accepts
//! underscores and signs, `str.strip()` knows more whitespace than Rust, and error
//! messages embed `repr()` of values. The helpers here reproduce those rules.

use num_bigint::BigInt;

/// Code points of the digit zero of every Unicode `Nd` block (Unicode 14, as in the
/// Python 3.11 that runs IM). Each block holds the ten digits 0..=9 in order, which is
/// what Python's `\d` matches and `int()` converts.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Non-ASCII code points that Python's `str.isprintable()` rejects (categories Cc, Cf, Zs,
/// Zl, Zp, Co). Unassigned code points (Cn) are not listed: we print them as they are.
const NON_PRINTABLE: [(u32, u32); 27] = [
    (0x80, 0xA0),
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xE000, 0xF8FF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
];

/// The value of a character matched by Python's `\d`, if it is one.
pub fn decimal_digit(c: char) -> Option<u32> {
    let code = c as u32;
    if c.is_ascii() {
        return c.to_digit(10);
    }
    // The table is sorted; find the last block starting at or before `code`.
    let index = DECIMAL_ZEROS.partition_point(|&zero| zero <= code);
    let zero = *DECIMAL_ZEROS.get(index.checked_sub(1)?)?;
    let value = code - zero;
    (value < 10).then_some(value)
}

/// Whether Python's `\w` matches `c` (letters, digits, numbers and `_`).
///
/// Rust's `is_alphanumeric` is a close approximation of Python's `str.isalnum`; the two
/// differ only on a few combining marks that Unicode calls alphabetic.
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c == '_' || c.is_ascii_alphanumeric()
    } else {
        c.is_alphanumeric()
    }
}

/// Python's `str.isspace()`, used by `str.strip()`.
pub fn is_python_space(c: char) -> bool {
    matches!(c, '\u{1c}'..='\u{1f}') || c.is_whitespace()
}

/// Python's `str.strip()` emptiness test: is the text only whitespace?
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_python_space)
}

fn is_printable(c: char) -> bool {
    let code = c as u32;
    if code < 0x80 {
        return (0x20..0x7f).contains(&code);
    }
    let index = NON_PRINTABLE.partition_point(|&(start, _)| start <= code);
    match index.checked_sub(1).and_then(|i| NON_PRINTABLE.get(i)) {
        Some(&(_, end)) => code > end,
        None => true,
    }
}

/// Python's `repr()` of a `str`: quotes chosen as Python does, escapes as Python does.
pub fn repr_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a list of strings: `['a', 'b']`.
pub fn repr_str_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.into_iter().map(repr_str).collect();
    format!("[{}]", parts.join(", "))
}

/// Python's `int(text)` for a `str`: surrounding whitespace, an optional sign, Unicode
/// decimal digits, single underscores between digits. `None` where Python raises.
pub fn parse_python_int(text: &str) -> Option<BigInt> {
    if !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().map(BigInt::from);
    }
    let trimmed = text.trim_matches(is_python_space);
    let (negative, body) = match trimmed.chars().next() {
        Some('-') => (true, &trimmed[1..]),
        Some('+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let mut digits = String::with_capacity(body.len());
    let mut previous_was_digit = false;
    for c in body.chars() {
        if c == '_' {
            if !previous_was_digit {
                return None;
            }
            previous_was_digit = false;
            continue;
        }
        let value = decimal_digit(c)?;
        digits.push(char::from_digit(value, 10)?);
        previous_was_digit = true;
    }
    if !previous_was_digit {
        return None;
    }
    let magnitude: BigInt = digits.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Python's `repr()` of a `float` (shortest round-trip digits, Python's layout).
pub fn repr_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:e}` gives the shortest digits that round-trip, as Python's repr does.
    let scientific = format!("{:e}", value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent + 1; // value = 0.DIGITS * 10^point
    let mut out = String::from(sign);
    if !(-4 < point && point <= 16) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{exp_sign}{:02}", exponent.abs()));
    } else if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if digits.len() <= point {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1500000000.0, "1500000000.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
            (1.5e-7, "1.5e-07"),
            (123.456, "123.456"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr_float(value), expected, "{value}");
        }
    }

    #[test]
    fn strings_repr_as_python() {
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(repr_str("\u{7f}\u{a0}é"), "'\\x7f\\xa0é'");
    }

    #[test]
    fn python_int_accepts_what_python_accepts() {
        assert_eq!(parse_python_int("007"), Some(BigInt::from(7)));
        assert_eq!(parse_python_int("1_0"), Some(BigInt::from(10)));
        assert_eq!(parse_python_int("-1"), Some(BigInt::from(-1)));
        assert_eq!(parse_python_int("\u{663}"), Some(BigInt::from(3)));
        assert_eq!(parse_python_int("_1"), None);
        assert_eq!(parse_python_int("1_"), None);
        assert_eq!(parse_python_int("1__0"), None);
        assert_eq!(parse_python_int(""), None);
        assert_eq!(parse_python_int("x"), None);
    }

    #[test]
    fn unicode_digits_are_decimal() {
        assert_eq!(decimal_digit('7'), Some(7));
        assert_eq!(decimal_digit('\u{669}'), Some(9));
        assert_eq!(decimal_digit('\u{b2}'), None);
        assert_eq!(decimal_digit('a'), None);
    }
}
