//! How sizes and durations are written for people (`1.5 MiB`, `1:02:03`), and how sizes are
//! read from them (`256K`, `2MiB`, `8MB/s`).

use std::time::Duration;

/// Human size with binary units: 1.5 MiB.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size as short as it reads: `105MiB`, `5.2MiB`, `512B` (a decimal below 10 only).
pub(crate) fn size_short(bytes: u64) -> String {
    let long = size(bytes);
    let Some((number, unit)) = long.split_once(' ') else {
        return long;
    };
    match number.parse::<f64>() {
        Ok(v) if v >= 10.0 && number.contains('.') => format!("{v:.0}{unit}"),
        _ => format!("{number}{unit}"),
    }
}

/// A duration as `M:SS`, or `H:MM:SS` from an hour up.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A size: a number of bytes, whole or decimal, with an optional unit, each a power of 1024
/// however it is spelt: `16384`, `16K`, `16KB`, `16KiB`, `1.5M`, `2MiB`, `1G` (case and a
/// space before the unit ignored). The one reader of sizes and rates on the command line.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(1 << shift);
    }
    let value = number.parse::<f64>().ok()? * (1u64 << shift) as f64;
    (value.is_finite() && value < u64::MAX as f64).then_some(value as u64)
}

/// A rate in bytes per second for `--download-limit` and `--upload-limit`: a size as
/// [`parse_size`] reads it, with an optional `/s`; `0` means no limit (`Some(None)`).
pub(crate) fn parse_rate(s: &str) -> Option<Option<u64>> {
    let s = s.trim();
    let bytes = parse_size(s.strip_suffix("/s").unwrap_or(s))?;
    Some((bytes > 0).then_some(bytes))
}

/// `secs` since the Unix epoch as a UTC date and time, `YYYY-MM-DD HH:MM:SS UTC` (the
/// proleptic Gregorian calendar; days to a date by Howard Hinnant's `civil_from_days`).
pub(crate) fn utc_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_binary_units() {
        assert_eq!(parse_size("16384"), Some(16384));
        assert_eq!(parse_size("256K"), Some(256 * 1024));
        assert_eq!(parse_size("256kib"), Some(256 * 1024));
        assert_eq!(parse_size("4M"), Some(4 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        for bad in ["", "K", "12Q", "-1", "99999999999999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_and_rates_take_every_common_spelling() {
        for (text, bytes) in [
            ("2MiB", 2 << 20),
            ("2MB", 2 << 20),
            ("2mb", 2 << 20),
            ("512KiB", 512 << 10),
            ("1.5M", 3 << 19),
            ("1GiB", 1 << 30),
            ("8 M", 8 << 20),
        ] {
            assert_eq!(parse_size(text), Some(bytes), "{text}");
        }
        assert_eq!(parse_rate("8MB/s"), Some(Some(8 << 20)));
        assert_eq!(parse_rate("2MiB/s"), Some(Some(2 << 20)));
        assert_eq!(parse_rate("0"), Some(None));
        for bad in ["x", "-1", "5T", "1e400", "NaN", "2 parsecs"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn utc_dates_match_the_calendar() {
        for (secs, date) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (1_796_041_959, "2026-11-30 12:32:39 UTC"),
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (-86_400, "1969-12-31 00:00:00 UTC"),
            (253_402_300_799, "9999-12-31 23:59:59 UTC"),
        ] {
            assert_eq!(utc_date(secs), date, "{secs}");
        }
    }
}
