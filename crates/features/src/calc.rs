//! The exact arithmetic of every feature, one function per primitive.
//!
//! These are the definitions the ONNX exporter must reproduce bit-exactly; every function
//! documents its order of operations and the ONNX operators that express it. Missing outputs
//! are always the canonical `f32::NAN` (bit pattern `0x7FC0_0000`), never a propagated NaN.

use std::hash::{BuildHasherDefault, Hasher};

use cr_data::Batch;

use crate::config::KeyPart;

/// 10^k for k = 0..=12 (HS widths are at most 12 digits).
pub(crate) const POW10: [u64; 13] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
];

/// HS prefix of `digits` digits of a code `width` digits wide:
/// `hs / 10^(width - digits)` (integer division; ONNX: `Div` on int64, both operands >= 0).
/// `digits >= width` returns the code itself. Example: `hs_prefix(71080, 6, 4) == 710`.
pub fn hs_prefix(hs: u64, width: u8, digits: u8) -> u64 {
    let shift = usize::from(width.saturating_sub(digits)).min(12);
    hs / POW10[shift]
}

/// Day of week, 0 = Monday .. 6 = Sunday, of `days` since 1970-01-01 (a Thursday):
/// `((days + 3) mod 7) as f32`, with a floor modulo (ONNX: int64 `Add`, `Mod` with `fmod = 0`,
/// which takes the divisor's sign; identical to `%` for `days >= 0`), then `Cast` to float.
pub fn day_of_week(days: i32) -> f32 {
    (i64::from(days) + 3).rem_euclid(7) as f32
}

/// Proleptic Gregorian (year, month 1..=12, day 1..=31) of `days` since 1970-01-01
/// (H. Hinnant's `civil_from_days`, integer arithmetic only).
pub fn civil_from_days(days: i32) -> (i64, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`), the
/// formula an exporter applies to the `YYYY`, `MM`, `DD` fields of the ISO date string:
/// `y' = y - (m <= 2)`, `era = floor(y' / 400)`, `yoe = y' - 400 era`,
/// `doy = (153 (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1`,
/// `doe = 365 yoe + yoe / 4 - yoe / 100 + doy`, `days = 146097 era + doe - 719468`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Month 1..=12 as f32 of `days` since 1970-01-01 (the `MM` field of the ISO date, cast).
pub fn month(days: i32) -> f32 {
    civil_from_days(days).1 as f32
}

/// Unit value: `value / mass` as one f32 division when `mass > 0` (false for NaN) and `value`
/// is not NaN; otherwise NaN. ONNX: `Where(And(Greater(mass, 0), Not(IsNaN(value))),
/// Div(value, mass), NaN)`. May be `+inf` when the quotient overflows f32 (not clamped).
pub fn unit_value(value: f32, mass: f32) -> f32 {
    if mass > 0.0 && !value.is_nan() {
        value / mass
    } else {
        f32::NAN
    }
}

/// Relative unit value: `unit_value / median` as one f32 division, NaN when `unit_value` is
/// NaN. `median` is the looked-up (HS4 -> HS2 -> global) fitted median, always finite and > 0.
pub fn rel_unit_value(unit_value: f32, median: f32) -> f32 {
    if unit_value.is_nan() {
        f32::NAN
    } else {
        unit_value / median
    }
}

/// Smoothed seizure rate `(pos + m * prior) / (n + m)`, evaluated in f64 in exactly that
/// order (`m * prior`, then `pos + _`, then `n + m`, then the division) and rounded once to
/// f32. Only used at fit time: ONNX sees the stored f32 table values.
pub fn smoothed_rate(pos: u64, n: u64, m: f64, prior: f64) -> f32 {
    ((pos as f64 + m * prior) / (n as f64 + m)) as f32
}

/// Appends the decimal form of `v` (no sign, no padding), exactly like `Cast(int64 -> string)`.
pub(crate) fn push_decimal(buf: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits: always valid UTF-8 (one copy instead of a push per char)
    buf.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
}

/// Appends the key string of `row` to `buf`: the parts joined with `"|"`, a categorical part
/// being its cell (`""` when missing), an HS part the decimal prefix without padding.
/// Callers validate `key` against the batch shape and `row < batch.len()` first.
pub(crate) fn push_key(buf: &mut String, key: &[KeyPart], width: u8, batch: &Batch, row: usize) {
    for (i, part) in key.iter().enumerate() {
        if i > 0 {
            buf.push('|');
        }
        match *part {
            KeyPart::Categorical(c) => buf.push_str(&batch.categorical[c][row]),
            KeyPart::Hs(d) => push_decimal(buf, hs_prefix(batch.hs[row], width, d)),
        }
    }
}

/// `s` is the canonical decimal form of some u64 (what `push_decimal` writes).
pub(crate) fn parse_canonical_decimal(s: &str) -> Option<u64> {
    let v: u64 = s.parse().ok()?;
    let mut back = String::new();
    push_decimal(&mut back, v);
    (back == s).then_some(v)
}

/// Median of finite values: the middle one, or for an even count the mean of the two middle
/// ones computed in f64 and rounded to f32. Sorts `v` in place. `None` when `v` is empty.
pub(crate) fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        ((f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0) as f32
    })
}

/// A small, fast, deterministic hasher (the FxHash mixing step) for lookup tables. Only used
/// for lookups: no output ever depends on hash-map iteration order.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_std_formatting() {
        for v in [0u64, 7, 10, 710, 71080, 999_999_999_999, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        assert_eq!(parse_canonical_decimal("710"), Some(710));
        assert_eq!(parse_canonical_decimal("0710"), None);
        assert_eq!(parse_canonical_decimal("+7"), None);
        assert_eq!(parse_canonical_decimal(""), None);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
