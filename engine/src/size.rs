//! Sizes as people write them, in profiles (`limits.memory = "4GiB"`) and on the command
//! line (`hermetic cache gc --max-size 10G`). Both go through `parse_size`, so a size that
//! works in one place works in the other, with the same value.
//!
//! A size is a whole number of bytes, optionally followed by a unit: K, M, G or T, alone
//! or with `i`, `iB` or `B` (any case, a space allowed before it), or a lone `B`. Every
//! unit is binary: `10G`, `10GB` and `10GiB` are all 10 × 2^30 bytes. `GB` is not 10^9
//! here because tmpfs `size=`, cgroup `memory.max` and `sort -h` read `G` as 2^30, and a
//! limit must not change by 7% with the spelling of its unit.

/// Why a text is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error(
        "`{0}` is not a size: a whole number of bytes, optionally followed by K, M, G or T \
         (e.g. 1048576, 500M, 4GiB)"
    )]
    Malformed(String),
    #[error("`{text}` has an unknown unit `{unit}` (use K, M, G or T, e.g. 500M or 4GiB)")]
    UnknownUnit { text: String, unit: String },
    #[error("`{0}` is too large (at most 2^64 - 1 bytes)")]
    TooLarge(String),
}

/// The number of bytes `text` means: `1048576`, `64k`, `500M`, `10G`, `4GiB`, `1 TB`
/// (units are powers of 1024, see the module's documentation). Zero is a size; whether it
/// is a sensible one is the caller's to say.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let unit_start = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(unit_start);
    let unit = unit.trim_start();
    if digits.is_empty() || !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(SizeError::Malformed(text.to_owned()));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "ki" | "kb" | "kib" => 10,
        "m" | "mi" | "mb" | "mib" => 20,
        "g" | "gi" | "gb" | "gib" => 30,
        "t" | "ti" | "tb" | "tib" => 40,
        _ => {
            return Err(SizeError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    // `digits` holds only ASCII digits, so parsing fails only on overflow.
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(1 << shift))
        .ok_or_else(|| SizeError::TooLarge(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_bytes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn every_spelling_of_a_unit_is_the_same_power_of_1024() {
        for (unit, bytes) in [
            ("k", 1u64 << 10),
            ("m", 1 << 20),
            ("g", 1 << 30),
            ("t", 1 << 40),
        ] {
            for suffix in ["", "i", "b", "ib"] {
                for spelled in [
                    format!("{unit}{suffix}"),
                    format!("{unit}{suffix}").to_uppercase(),
                ] {
                    assert_eq!(
                        parse_size(&format!("10{spelled}")),
                        Ok(10 * bytes),
                        "10{spelled}"
                    );
                }
            }
        }
        assert_eq!(parse_size("10G"), parse_size("10GiB"));
        assert_eq!(parse_size("10GB"), parse_size("10GiB"));
    }

    /// What profiles and `cache gc --max-size` accepted before they shared this parser.
    #[test]
    fn sizes_accepted_before_keep_their_values() {
        // Profiles.
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size(" 4 GiB "), Ok(4 << 30));
        // `cache gc --max-size`.
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("10g"), Ok(10 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
    }

    #[test]
    fn malformed_sizes_are_refused_with_the_reason() {
        for malformed in [
            "", "  ", "G", "GiB", "1.5G", "-1", "+1", "1,024", "0x10", "4 G B", "1Kib2",
        ] {
            assert_eq!(
                parse_size(malformed),
                Err(SizeError::Malformed(malformed.trim().to_owned())),
                "{malformed:?}"
            );
        }
        assert_eq!(
            parse_size("12 furlongs"),
            Err(SizeError::UnknownUnit {
                text: "12 furlongs".into(),
                unit: "furlongs".into()
            })
        );
        for unknown in ["10X", "1P", "1PiB", "1iB"] {
            assert!(
                matches!(parse_size(unknown), Err(SizeError::UnknownUnit { .. })),
                "{unknown}"
            );
        }
        for too_large in ["99999999999T", "18446744073709551616"] {
            assert_eq!(
                parse_size(too_large),
                Err(SizeError::TooLarge(too_large.into()))
            );
        }
    }
}
