//! Numbers as IM's RADL library holds them: Python `int` (unbounded), `float`, or `bool`
//! (only from RADL-JSON `true`/`false`, which Python treats as the integers 1 and 0).
//!
//! Units (`512m`, `2GiB`) are kept beside the number as written; [`unit_factor`] gives
//! the multiplier IM applies: `K M G T` are decimal powers, `Ki Mi Gi Ti` binary, an
//! optional trailing `B` is ignored, case does not matter, and anything else counts as 1.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::BigInt;
use num_traits::{FromPrimitive, Signed, ToPrimitive, Zero};

use super::pytext::repr_float;

/// A numeric RADL value with Python's semantics.
#[derive(Debug, Clone)]
pub enum Number {
    /// A Python `int` that fits in 64 bits (the lexer never produces a sign).
    Int(i64),
    /// Any other Python `int` (never one that fits in an `i64`: see [`Number::int`]).
    BigInt(Box<BigInt>),
    /// A Python `float`.
    Float(f64),
    /// A Python `bool`, which only RADL-JSON can produce; it compares as 0 or 1.
    Bool(bool),
}

/// Why a numeric conversion failed, with Python's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberError(pub String);

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Number::Int(value)
    }
}

impl Number {
    /// A Python `int` of any size.
    pub fn int(value: BigInt) -> Self {
        match value.to_i64() {
            Some(small) => Number::Int(small),
            None => Number::BigInt(Box::new(value)),
        }
    }

    /// Whether Python sees an `int` (bools included, as `isinstance(x, int)` does).
    pub fn is_int(&self) -> bool {
        !matches!(self, Number::Float(_))
    }

    /// Python truthiness: zero is false.
    pub fn is_truthy(&self) -> bool {
        match self {
            Number::Int(value) => *value != 0,
            Number::BigInt(value) => !value.is_zero(),
            Number::Float(value) => *value != 0.0,
            Number::Bool(value) => *value,
        }
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(value) => Some(*value),
            Number::BigInt(value) => value.to_i64(),
            Number::Bool(value) => Some(i64::from(*value)),
            Number::Float(_) => None,
        }
    }

    /// The value as an `f64` (Python's `float(x)`), failing as Python does for huge ints.
    pub fn to_f64(&self) -> Result<f64, NumberError> {
        match self {
            Number::Int(value) => Ok(*value as f64),
            Number::BigInt(value) => int_to_f64(value),
            Number::Float(value) => Ok(*value),
            Number::Bool(value) => Ok(f64::from(u8::from(*value))),
        }
    }

    fn as_int(&self) -> Option<BigInt> {
        match self {
            Number::Int(value) => Some(BigInt::from(*value)),
            Number::BigInt(value) => Some((**value).clone()),
            Number::Bool(value) => Some(BigInt::from(u8::from(*value))),
            Number::Float(_) => None,
        }
    }

    /// `value * factor` as Python computes it (exact for ints, float otherwise).
    pub fn times(&self, factor: u64) -> Number {
        match self {
            Number::Float(value) => Number::Float(value * factor as f64),
            Number::Int(value) => match i64::try_from(factor)
                .ok()
                .and_then(|f| value.checked_mul(f))
            {
                Some(product) => Number::Int(product),
                None => Number::int(BigInt::from(*value) * BigInt::from(factor)),
            },
            other => Number::int(other.as_int().unwrap_or_default() * BigInt::from(factor)),
        }
    }

    /// IM's `Feature.getValue(unit)`: the value converted from `from_unit` to `to_unit`.
    /// Without units the value is returned unchanged; otherwise the product goes through a
    /// float and ints are rounded half to even, exactly as IM does (`2048m` in `M` is 2048).
    pub fn convert(&self, from_unit: &str, to_unit: &str) -> Result<Number, NumberError> {
        if from_unit.is_empty() && to_unit.is_empty() {
            return Ok(self.clone());
        }
        let product = self.times(unit_factor(from_unit)).to_f64()?;
        let ratio = product / unit_factor(to_unit) as f64;
        if self.is_int() {
            let rounded = ratio.round_ties_even();
            if rounded.abs() < 9.0e18 {
                return Ok(Number::Int(rounded as i64));
            }
            BigInt::from_f64(rounded)
                .map(Number::int)
                .ok_or_else(|| NumberError("cannot convert float infinity to integer".into()))
        } else {
            Ok(Number::Float(ratio))
        }
    }

    /// Python's `==` between numbers (1 == 1.0 == True).
    pub fn py_eq(&self, other: &Number) -> bool {
        self.py_cmp(other) == Some(Ordering::Equal)
    }

    /// Python's ordering between numbers; `None` when a NaN is involved.
    pub fn py_cmp(&self, other: &Number) -> Option<Ordering> {
        if let (Number::Int(left), Number::Int(right)) = (self, other) {
            return Some(left.cmp(right));
        }
        if let (Number::BigInt(left), Number::BigInt(right)) = (self, other) {
            return Some(left.cmp(right));
        }
        match (self.as_int(), other.as_int()) {
            (Some(left), Some(right)) => Some(left.cmp(&right)),
            (Some(left), None) => compare_int_float(&left, other.to_f64().ok()?),
            (None, Some(right)) => {
                compare_int_float(&right, self.to_f64().ok()?).map(Ordering::reverse)
            }
            (None, None) => self.to_f64().ok()?.partial_cmp(&other.to_f64().ok()?),
        }
    }

    /// Whether the number is negative (`x < 0` in Python).
    pub fn is_negative(&self) -> bool {
        match self {
            Number::Int(value) => *value < 0,
            Number::BigInt(value) => value.is_negative(),
            Number::Float(value) => *value < 0.0,
            Number::Bool(_) => false,
        }
    }

    /// The text of this number in a JSON document (Python's `json.dumps`).
    pub fn to_json(&self) -> String {
        match self {
            Number::Float(value) if value.is_nan() => "NaN".to_owned(),
            Number::Float(value) if value.is_infinite() => if *value > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
            .to_owned(),
            Number::Bool(value) => if *value { "true" } else { "false" }.to_owned(),
            other => other.to_string(),
        }
    }
}

/// Python's `str()` of the number: `7`, `1.5`, `1e+16`, `True`.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(value) => write!(f, "{value}"),
            Number::BigInt(value) => write!(f, "{value}"),
            Number::Float(value) => f.write_str(&repr_float(*value)),
            Number::Bool(value) => f.write_str(if *value { "True" } else { "False" }),
        }
    }
}

/// Structural equality (same kind and same value), used to compare documents.
impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::BigInt(a), Number::BigInt(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a.to_bits() == b.to_bits() || a == b,
            (Number::Bool(a), Number::Bool(b)) => a == b,
            _ => false,
        }
    }
}

fn int_to_f64(value: &BigInt) -> Result<f64, NumberError> {
    match value.to_f64() {
        Some(converted) if converted.is_finite() => Ok(converted),
        _ => Err(NumberError("int too large to convert to float".into())),
    }
}

/// Exact comparison of an int with a float, as Python does it.
fn compare_int_float(int: &BigInt, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    if float.is_infinite() {
        return Some(if float > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    let floor = float.floor();
    let floor_int = BigInt::from_f64(floor)?;
    match int.cmp(&floor_int) {
        Ordering::Equal if float > floor => Some(Ordering::Less),
        ordering => Some(ordering),
    }
}

/// The multiplier IM applies for a unit (`UnitToValue`): decimal for `K M G T`, binary
/// for `Ki Mi Gi Ti`, an optional trailing `B`, case-insensitive, 1 for anything else.
pub fn unit_factor(unit: &str) -> u64 {
    let upper = unit.to_uppercase();
    let base = upper.strip_suffix('B').unwrap_or(&upper);
    match base {
        "K" => 1_000,
        "KI" => 1 << 10,
        "M" => 1_000_000,
        "MI" => 1 << 20,
        "G" => 1_000_000_000,
        "GI" => 1 << 30,
        "T" => 1_000_000_000_000,
        "TI" => 1 << 40,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_as_im_does() {
        assert_eq!(unit_factor("m"), 1_000_000);
        assert_eq!(unit_factor("GB"), 1_000_000_000);
        assert_eq!(unit_factor("KiB"), 1024);
        assert_eq!(unit_factor("B"), 1);
        assert_eq!(unit_factor("ECU"), 1);
        let mem = Number::from(512);
        assert_eq!(
            mem.convert("m", "").map(|n| n.to_string()),
            Ok("512000000".into())
        );
        let two_g = Number::from(2);
        assert_eq!(
            two_g.convert("g", "M").map(|n| n.to_string()),
            Ok("2000".into())
        );
        let bytes = Number::from(3221225472);
        assert_eq!(
            bytes.convert("", "M").map(|n| n.to_string()),
            Ok("3221".into())
        );
        let float = Number::Float(1.5);
        assert_eq!(
            float.convert("g", "").map(|n| n.to_string()),
            Ok("1500000000.0".into())
        );
    }

    #[test]
    fn ints_and_floats_compare_exactly() {
        let three = Number::from(3);
        assert!(three.py_eq(&Number::Float(3.0)));
        assert_eq!(three.py_cmp(&Number::Float(3.5)), Some(Ordering::Less));
        assert_eq!(Number::Float(f64::NAN).py_cmp(&three), None);
        assert!(Number::Bool(true).py_eq(&Number::from(1)));
    }

    #[test]
    fn huge_ints_refuse_float_conversion() {
        let huge = Number::int(BigInt::from(10).pow(400));
        assert_eq!(
            huge.convert("k", ""),
            Err(NumberError("int too large to convert to float".into()))
        );
    }
}
