//! Timestamps to epoch milliseconds, as JupiterOne's `parseTimePropertyValue` gives them.
//!
//! Accepts RFC 3339 / ISO 8601 date-times with `T` or a space between date and time,
//! any number of fractional digits (truncated to milliseconds, as a JS `Date` does),
//! and `Z`, `±HH:MM`, `±HHMM` or `±HH` offsets. A date-time without an offset is read as
//! UTC; a bare date is midnight UTC. Anything else gives `None`, never a panic: a
//! timestamp is ASCII, so any other character (an em dash, an accented letter,
//! full-width digits) makes the value unparsable before any byte offset is used.

/// Parses `s` to epoch milliseconds; `None` for an empty, non-ASCII or unparsable value.
pub fn parse_epoch_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    // Every slice below is at a byte offset, which is a character boundary only in ASCII.
    if s.len() < 10 || !s.is_ascii() {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let days = parse_date(date)?;
    if rest.is_empty() {
        return Some(days * 86_400_000);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (time_ms, offset_ms) = parse_time_and_offset(rest)?;
    Some(days * 86_400_000 + time_ms - offset_ms)
}

fn parse_date(d: &str) -> Option<i64> {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = digits(&d[0..4])?;
    let month: i64 = digits(&d[5..7])?;
    let day: i64 = digits(&d[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `HH:MM[:SS[.fff…]]` followed by an optional offset; returns (ms into the day, offset ms).
fn parse_time_and_offset(t: &str) -> Option<(i64, i64)> {
    let split = t.find(['Z', 'z', '+', '-']).unwrap_or(t.len());
    let (clock, zone) = t.split_at(split);
    let mut parts = clock.splitn(3, ':');
    let hour: i64 = digits(parts.next()?)?;
    let minute: i64 = digits(parts.next()?)?;
    let (second, millis) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once(['.', ',']).unwrap_or((sec, ""));
            (digits(whole)?, fraction_ms(frac)?)
        }
    };
    if hour > 24 || minute > 59 || second > 60 {
        return None;
    }
    let time = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    Some((time, parse_offset_ms(zone)?))
}

fn fraction_ms(frac: &str) -> Option<i64> {
    if frac.is_empty() {
        return Some(0);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms = 0;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += i64::from(b - b'0') * [100, 10, 1][i];
    }
    Some(ms)
}

fn parse_offset_ms(zone: &str) -> Option<i64> {
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let body = zone.get(1..)?.replace(':', "");
    let (h, m) = match body.len() {
        2 => (digits(&body)?, 0),
        4 => (digits(body.get(..2)?)?, digits(body.get(2..)?)?),
        _ => return None,
    };
    Some(sign * (h * 60 + m) * 60_000)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_epoch_ms;

    #[test]
    fn iso_with_zulu_and_microseconds_truncates() {
        assert_eq!(
            parse_epoch_ms("2023-03-01T12:39:21.576048Z"),
            Some(1_677_674_361_576)
        );
    }

    #[test]
    fn space_separated_with_offset() {
        assert_eq!(
            parse_epoch_ms("2022-06-24 14:20:19.961496+00:00"),
            Some(1_656_080_419_961)
        );
        assert_eq!(
            parse_epoch_ms("2022-06-24 16:20:19+02:00"),
            Some(1_656_080_419_000)
        );
        assert_eq!(
            parse_epoch_ms("2022-06-24T09:20:19-0500"),
            Some(1_656_080_419_000)
        );
    }

    #[test]
    fn bare_date_and_epoch() {
        assert_eq!(parse_epoch_ms("1970-01-01"), Some(0));
        assert_eq!(parse_epoch_ms("2000-03-01"), Some(951_868_800_000));
    }

    #[test]
    fn non_ascii_is_none_and_never_panics() {
        for s in [
            "Unknown — never",
            "2024—01—01",
            "2024-01-0é",
            "2024-01-01Té2:00",
            "２０２４-０１-０１",
            "2024-01-01T10:00+０１:００",
            "2024-01-01T10:00:00.５Z",
            "éééééééééééé",
            "2024-01-01T10:00:00Zé",
        ] {
            assert_eq!(parse_epoch_ms(s), None, "{s}");
        }
        // Every prefix and suffix of a timestamp with a multi-byte character in it.
        let mixed = "2024-01-01T10:00:00.123+01:00 — ２０２４é";
        for (i, _) in mixed.char_indices() {
            let _ = parse_epoch_ms(&mixed[..i]);
            let _ = parse_epoch_ms(&mixed[i..]);
        }
        assert_eq!(
            parse_epoch_ms(" 2024-01-01 "),
            Some(1_704_067_200_000),
            "ASCII whitespace around a valid date is still trimmed"
        );
    }

    #[test]
    fn garbage_is_none() {
        for s in [
            "",
            "No value",
            "2022-13-01",
            "2022-06-24X10:00",
            "2022-06-24T1a:00",
            "2022-06-24T10:00+",
            "2022-06-24T10:00+1",
            "2022-06-24T99999999999999999999:00",
        ] {
            assert_eq!(parse_epoch_ms(s), None, "{s}");
        }
    }
}
