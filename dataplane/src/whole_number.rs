//! JSON numbers without a fraction, as JSON Schema's `integer` has them:
//! `60`, and `60.0` or `6e1` too. The OpenAPI document says `integer`, and
//! a client whose JSON numbers are all doubles may write either.

use serde::{Deserialize, Deserializer, de::Error};

/// `number` as a whole number, if it is one and not negative.
pub fn of(number: &serde_json::Number) -> Option<u64> {
    number.as_u64().or_else(|| {
        let float = number.as_f64()?;
        // `as` saturates: beyond 2^64 is past every limit anyway.
        (float.fract() == 0.0 && float >= 0.0).then_some(float as u64)
    })
}

/// For `#[serde(deserialize_with = "whole_number::optional")]` on an
/// `Option<u64>`.
pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::<serde_json::Number>::deserialize(deserializer)?
        .map(|number| {
            of(&number).ok_or_else(|| {
                D::Error::custom(format!(
                    "{number} is not a whole number that is not negative"
                ))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Position {
        #[serde(default, deserialize_with = "optional")]
        through: Option<u64>,
    }

    fn through(json: &str) -> Result<Option<u64>, serde_json::Error> {
        serde_json::from_str::<Position>(json).map(|p| p.through)
    }

    #[test]
    fn integral_floats_count_and_fractions_do_not() {
        for json in [
            r#"{"through":60}"#,
            r#"{"through":60.0}"#,
            r#"{"through":6e1}"#,
        ] {
            assert_eq!(through(json).expect(json), Some(60));
        }
        assert_eq!(through("{}").expect("absent"), None);
        assert_eq!(through(r#"{"through":null}"#).expect("null"), None);
        for json in [
            r#"{"through":1.5}"#,
            r#"{"through":-1}"#,
            r#"{"through":"1"}"#,
        ] {
            assert!(through(json).is_err(), "{json}");
        }
    }
}
