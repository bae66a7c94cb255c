//! UTC timestamps for lock files and log lines, without a date crate.
//!
//! Writes RFC 3339 (`2026-12-04T15:31:00Z`); reads that and the form Ruby's
//! YAML gives a `Time` (`2026-12-04 15:31:00.123456789 +00:00`), which is what
//! capistrano-deploy-lock stores in `:expire_at:`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's civil_from_days.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01; Howard Hinnant's days_from_civil.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn seconds_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

/// `2026-12-04T15:31:00Z`
pub fn rfc3339(t: SystemTime) -> String {
    let secs = seconds_since_epoch(t);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// `2026-12-04T15:31:00.123Z`, for log lines where the order of events matters.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let whole = rfc3339(t);
    format!("{}.{millis:03}Z", &whole[..whole.len() - 1])
}

/// Parse `YYYY-MM-DD[T ]HH:MM:SS[.frac][ ](Z|+HH:MM|-HH:MM|+HHMM)`.
pub fn parse(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let scaled: String = frac[..digits]
            .chars()
            .chain("000000000".chars())
            .take(9)
            .collect();
        nanos = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let rest = rest.trim_start();
    let offset_secs: i64 = match rest {
        "Z" | "z" | "UTC" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hhmm: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if hhmm.len() != 4 || !hhmm.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = hhmm[..2].parse().ok()?;
            let minutes: i64 = hhmm[2..].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let whole = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(whole, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(1_796_398_260)), "2026-12-04T15:31:00Z");
        assert_eq!(
            rfc3339_millis(at(1_796_398_260) + Duration::from_millis(7)),
            "2026-12-04T15:31:00.007Z"
        );
    }

    #[test]
    fn round_trips_across_leap_years() {
        for secs in [0, 951_782_400, 1_709_164_800, 1_796_398_260, 4_102_444_800] {
            assert_eq!(parse(&rfc3339(at(secs))), Some(at(secs)), "{secs}");
        }
    }

    #[test]
    fn reads_ruby_yaml_times() {
        let t = at(1_796_398_260);
        assert_eq!(parse("2026-12-04 15:31:00.000000000 Z"), Some(t));
        assert_eq!(parse("2026-12-04 15:31:00 +00:00"), Some(t));
        assert_eq!(
            parse("2026-12-04 10:31:00.5 -05:00"),
            Some(t + Duration::from_millis(500))
        );
        assert_eq!(parse("2026-12-04T16:31:00+0100"), Some(t));
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "false",
            "2026-12-04",
            "2026-13-04T00:00:00Z",
            "2026-12-04T15:31:00",
            "2026-12-04T15:31:00+5",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
