//! Time as XMPP writes it (XEP-0082 date-times, UTC), to and from seconds
//! since the Unix epoch; now, from WASI's wall clock (see [`crate::random`]
//! for why not `std::time`).

/// Now, in seconds since the epoch.
pub fn now() -> u64 {
    wasip2::clocks::wall_clock::now().seconds
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> u64 {
    let now = wasip2::clocks::wall_clock::now();
    now.seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(now.nanoseconds))
}

/// `seconds` as an XEP-0082 date-time in UTC, `2026-11-28T21:45:48Z`.
pub fn format(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// An XEP-0203 delay stamp: the time `seconds`, noted by `from` if given.
pub fn delay(from: Option<&str>, seconds: u64) -> crate::xml::Element {
    crate::xml::Element::new("delay", "urn:xmpp:delay")
        .with_opt("from", from)
        .with("stamp", format(seconds))
}

/// An XEP-0082 date-time (`2026-11-28T21:45:48Z`, with optional fractions
/// and a `±hh:mm` offset instead of `Z`) in seconds since the epoch;
/// `None` if it is not one, or before the epoch.
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, byte)| text.as_bytes().get(at) != Some(&byte))
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            let offset = (hours * 60 + minutes) * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        for seconds in [0, 951_782_400, 1_764_365_148, 4_102_444_799] {
            assert_eq!(parse(&format(seconds)), Some(seconds));
        }
    }

    #[test]
    fn reads_fractions_and_offsets() {
        assert_eq!(parse("2026-11-28T21:45:48.123Z"), parse("2026-11-28T21:45:48Z"));
        assert_eq!(parse("2026-11-28T23:45:48+02:00"), parse("2026-11-28T21:45:48Z"));
        assert_eq!(parse("2026-11-28T20:45:48-01:00"), parse("2026-11-28T21:45:48Z"));
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for text in [
            "",
            "2026-11-28",
            "2026-13-01T00:00:00Z",
            "2026-11-28T21:45:48",
            "yesterday",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
