//! Floating-point output exactly as onnx.printer writes it.
//!
//! onnx.printer formats with C++ `std::to_chars(first, last, value)` (no format argument), which
//! the standard defines as the shortest text that reads back to the same value, written like
//! `printf` `%f` or `%e`, whichever is shorter (`%f` on a tie). Two details of libstdc++, which
//! the Linux wheels are built with, matter and are reproduced here:
//! - the exponent has at least two digits (`1e-05`, `1e+16`), as `%e` writes it;
//! - when `%f` wins for a value with no fractional part, the integer is written *exactly*, not
//!   as the shortest digits padded with zeros: `float(123456789)` prints `123456792`.
//!
//! NaN prints as `nan` or `-nan` (onnx normalizes it so every platform agrees).
//!
//! The shortest digits come from Rust's `{:e}` formatting, which agrees with Ryu (the algorithm
//! behind `to_chars`) except on exact ties: when the value lies exactly halfway between the two
//! closest shortest candidates, Ryu takes the one with an even last digit and Rust may take the
//! other (`1762400.25f32` is `1762400.2` to Ryu, `1762400.3` to Rust). [`shortest_digits`]
//! detects such ties exactly, with integer arithmetic on the value's binary significand, and
//! applies Ryu's rule.

use std::fmt::Write as _;

/// A float type the printer writes: `f32` for float attributes and data, `f64` for doubles.
pub(crate) trait PrintFloat: Copy + std::fmt::LowerExp {
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
    fn is_sign_negative(self) -> bool;
    /// The magnitude as an exact integer; only called on integral values below 1e24.
    fn integral_magnitude(self) -> u128;
    /// `(m, e)` with `|self| = m * 2^e` and `m` odd, for finite non-zero values.
    fn odd_significand(self) -> (u64, i32);
}

/// Splits an IEEE significand field and biased exponent into an odd integer and a power of two.
fn odd_parts(fraction: u64, biased_exponent: i32, fraction_bits: i32, bias: i32) -> (u64, i32) {
    let (mantissa, exponent) = if biased_exponent == 0 {
        (fraction, 1 - bias - fraction_bits)
    } else {
        (
            fraction | (1 << fraction_bits),
            biased_exponent - bias - fraction_bits,
        )
    };
    let zeros = mantissa.trailing_zeros().min(63);
    (mantissa >> zeros, exponent + zeros as i32)
}

impl PrintFloat for f32 {
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn is_infinite(self) -> bool {
        f32::is_infinite(self)
    }
    fn is_sign_negative(self) -> bool {
        f32::is_sign_negative(self)
    }
    fn integral_magnitude(self) -> u128 {
        // Exact: the value is integral and far below u128::MAX.
        self.abs() as u128
    }
    fn odd_significand(self) -> (u64, i32) {
        let bits = self.to_bits();
        odd_parts(
            u64::from(bits & 0x7f_ffff),
            ((bits >> 23) & 0xff) as i32,
            23,
            127,
        )
    }
}

impl PrintFloat for f64 {
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn is_infinite(self) -> bool {
        f64::is_infinite(self)
    }
    fn is_sign_negative(self) -> bool {
        f64::is_sign_negative(self)
    }
    fn integral_magnitude(self) -> u128 {
        self.abs() as u128
    }
    fn odd_significand(self) -> (u64, i32) {
        let bits = self.to_bits();
        odd_parts(
            bits & 0xf_ffff_ffff_ffff,
            ((bits >> 52) & 0x7ff) as i32,
            52,
            1023,
        )
    }
}

/// Appends `value` as `std::to_chars` writes it.
pub(crate) fn write_float<F: PrintFloat>(out: &mut String, value: F) {
    if value.is_sign_negative() {
        out.push('-');
    }
    if value.is_nan() {
        out.push_str("nan");
        return;
    }
    if value.is_infinite() {
        out.push_str("inf");
        return;
    }

    let (digits, exponent) = shortest_digits(value);
    let digits = digits.as_str();
    let n = digits.len() as i32;

    // Lengths without the sign, which both forms share.
    let exponent_digits = if exponent.abs() >= 100 { 3 } else { 2 };
    let scientific_len = n + i32::from(n > 1) + 2 + exponent_digits;
    let fixed_len = if exponent >= 0 {
        if n > exponent + 1 {
            n + 1
        } else {
            exponent + 1
        }
    } else {
        n + 1 - exponent
    };

    if fixed_len <= scientific_len {
        if exponent >= n - 1 {
            // Integral: to_chars writes the exact value (as `%.0f` would).
            let _ = write!(out, "{}", value.integral_magnitude());
        } else if exponent >= 0 {
            let (int_part, frac_part) = digits.split_at(exponent as usize + 1);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            out.push_str(digits);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.abs());
    }
}

/// Decimal digits on the stack: printing a tensor formats millions of floats, and a heap string
/// per value would double the printer's time.
struct Digits {
    bytes: [u8; 48],
    len: usize,
}

impl Digits {
    fn new() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for Digits {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The shortest round-trip decimal digits of a finite `value` (no sign, no trailing zeros) and
/// the decimal exponent of the first digit, as Ryu chooses them.
fn shortest_digits<F: PrintFloat>(value: F) -> (Digits, i32) {
    // Rust's `{:e}` gives the shortest digits as `d.ddde-X` (at most 17 digits and `e-324`).
    let mut scientific = Digits::new();
    let _ = write!(scientific, "{value:e}");
    let text = scientific.bytes.get(..scientific.len).unwrap_or_default();
    let mut digits = Digits::new();
    let mut exponent = 0i32;
    let mut exponent_sign = 1;
    let mut in_exponent = false;
    for &b in text {
        match b {
            b'e' => in_exponent = true,
            b'-' if in_exponent => exponent_sign = -1,
            b'0'..=b'9' if in_exponent => exponent = exponent * 10 + i32::from(b - b'0'),
            b'0'..=b'9' => {
                if let Some(slot) = digits.bytes.get_mut(digits.len) {
                    *slot = b;
                    digits.len += 1;
                }
            }
            _ => {}
        }
    }
    let exponent = exponent_sign * exponent;
    let digit_values = || {
        digits
            .bytes
            .iter()
            .take(digits.len)
            .map(|b| u128::from(b - b'0'))
    };
    // Only an odd last digit can be the wrong side of a tie; zero is never one.
    if digit_values().next_back().is_none_or(|d| d % 2 == 0) {
        return (digits, exponent);
    }
    let d = digit_values().fold(0u128, |d, digit| d * 10 + digit);
    // The scale of the last digit: value ~ d * 10^scale.
    let scale = exponent - (digits.len as i32 - 1);
    let (odd, exp2) = value.odd_significand();
    // A tie below d (value = (d - 1/2) * 10^scale) or above it; Ryu rounds a tie to the even
    // candidate.
    let adjusted = if is_half_way(2 * d - 1, scale, odd, exp2) {
        d - 1
    } else if is_half_way(2 * d + 1, scale, odd, exp2) {
        d + 1
    } else {
        return (digits, exponent);
    };
    let mut new_digits = Digits::new();
    let _ = write!(new_digits, "{adjusted}");
    let new_exponent = exponent + new_digits.len as i32 - digits.len as i32;
    while new_digits.len > 1 && new_digits.bytes.get(new_digits.len - 1) == Some(&b'0') {
        new_digits.len -= 1;
    }
    (new_digits, new_exponent)
}

/// Whether `odd * 2^exp2 == halves * 10^scale / 2` exactly, for odd `halves`.
fn is_half_way(halves: u128, scale: i32, odd: u64, exp2: i32) -> bool {
    let odd = u128::from(odd);
    let power_of_five = |k: i32| (0..k).try_fold(1u128, |p, _| p.checked_mul(5));
    if scale >= 1 {
        // halves * 5^scale * 2^(scale - 1): the odd parts and the powers of two must agree.
        exp2 == scale - 1 && power_of_five(scale).and_then(|p| halves.checked_mul(p)) == Some(odd)
    } else {
        // halves / (5^q * 2^(q + 1)) with q = -scale.
        let q = -scale;
        exp2 == -(q + 1) && power_of_five(q).and_then(|p| odd.checked_mul(p)) == Some(halves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(value: f32) -> String {
        let mut s = String::new();
        write_float(&mut s, value);
        s
    }

    fn f64s(value: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, value);
        s
    }

    /// Expected strings are what onnx 1.23.2's printer wrote for these values.
    #[test]
    #[allow(
        clippy::excessive_precision,
        reason = "the ties are written out exactly, digits beyond the shortest included"
    )]
    fn matches_to_chars() {
        let floats = [
            (1.5, "1.5"),
            (123456789.0, "123456792"),
            (1e-5, "1e-05"),
            (3e38, "3e+38"),
            (1e10, "1e+10"),
            (16777216.0, "16777216"),
            (1234567.0, "1234567"),
            (12345678.0, "12345678"),
            (0.0001, "1e-04"),
            (0.001, "0.001"),
            (-0.0, "-0"),
            (0.0, "0"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
            (f32::NAN, "nan"),
            (-f32::NAN, "-nan"),
            (100.0, "100"),
            (1e6, "1e+06"),
            (1e7, "1e+07"),
            (1e16, "1e+16"),
            (33554432.0, "33554432"),
            // Exact ties between two shortest candidates go to the even digit.
            (-1762400.25, "-1762400.2"),
            (1257302.25, "1257302.2"),
            (288715.125, "288715.12"),
        ];
        for (value, text) in floats {
            assert_eq!(f32s(value), text, "{value:e}");
        }
        let doubles = [
            (123456789012345678.0, "123456789012345680"),
            (1e22, "1e+22"),
            (1e21, "1e+21"),
            (1152921504606846976.0, "1152921504606846976"),
            (1180591620717411303424.0, "1180591620717411303424"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (5e-324, "5e-324"),
            (1e23, "1e+23"),
            (9007199254740993.0, "9007199254740992"),
            (123456789012344992.0, "123456789012344992"),
            (-29356608634222.3125, "-29356608634222.312"),
        ];
        for (value, text) in doubles {
            assert_eq!(f64s(value), text, "{value:e}");
        }
    }
}
