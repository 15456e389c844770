//! Times and durations, as people write them on the command line, in plans and in rules.
//!
//! * A **duration** is a whole number and one unit: `30s`, `15m`, `4h`, `1d`, `1w` (or `0`), at
//!   most [`Duration::MAX`] (100 years): beyond that no timestamp arithmetic stays in range.
//! * A **timestamp** is RFC 3339 (`2026-11-27T23:50:00Z`), the same with a space for the `T`
//!   and the offset left out as UTC (`2026-11-27 23:50`, what exporters and people write), or a
//!   date (`2026-11-27`, midnight UTC).
//! * A **time argument** (`--since`, `--until`) is a timestamp, or an age counted back from
//!   [`now`] (`90m`, `7d`), so `KIR_NOW` moves every relative window the same way.
//!
//! Arithmetic is checked: a time out of range is an error that says so, never a panic.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};

/// What is wrong with a time or a duration, in words for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    /// Not a form kir reads.
    Bad(String),
    /// Well formed, but past what kir can count with.
    OutOfRange(String),
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Bad(m) | TimeError::OutOfRange(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TimeError {}

/// A length of time written `30s`, `15m`, `4h`, `1d` or `1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    seconds: i64,
}

const UNITS: [(&str, i64); 5] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)];

impl Duration {
    /// 100 years of 366 days: longer than any window, timer or age that makes sense, and short
    /// enough that `now ± MAX` and its milliseconds never overflow.
    pub const MAX: Duration = Duration { seconds: 100 * 366 * 86_400 };

    pub const fn from_secs(seconds: i64) -> Self {
        Duration { seconds }
    }

    pub fn as_secs(self) -> i64 {
        self.seconds
    }

    pub fn as_millis(self) -> i64 {
        self.seconds.saturating_mul(1000)
    }

    pub fn to_signed(self) -> SignedDuration {
        SignedDuration::from_secs(self.seconds)
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds.max(0) as u64)
    }

    /// The one duration parser of kir.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let text = text.trim();
        if text == "0" {
            return Ok(Duration { seconds: 0 });
        }
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let bad =
            || TimeError::Bad(format!("bad duration {text:?}: write a number and a unit, e.g. 30s, 15m, 4h, 1d, 1w"));
        let unit_seconds = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s).ok_or_else(bad)?;
        if number.is_empty() {
            return Err(bad());
        }
        let too_long = || {
            TimeError::OutOfRange(format!("duration {text:?} is out of range: at most {} (100 years)", Duration::MAX))
        };
        // Digits only, so a failed parse is a number too large for i64.
        let n: i64 = number.parse().map_err(|_| too_long())?;
        let seconds = n.checked_mul(unit_seconds).ok_or_else(too_long)?;
        if seconds > Duration::MAX.seconds {
            return Err(too_long());
        }
        Ok(Duration { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        for (unit, size) in UNITS.iter().rev() {
            if s != 0 && *size > 1 && s % size == 0 {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl std::str::FromStr for Duration {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        Duration::parse(s)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => Duration::parse(&t).map_err(serde::de::Error::custom),
            Raw::Number(0) => Ok(Duration { seconds: 0 }),
            Raw::Number(n) => {
                Err(serde::de::Error::custom(format!("bad duration {n}: give a unit, e.g. {n}m or {n}s")))
            }
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The one timestamp parser of kir, for times in records and on the command line alike: RFC
/// 3339; a space for the `T`; no offset (read as UTC); a plain date (midnight UTC).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    if let Some(t) = canonical_utc(text.as_bytes()) {
        return Some(t);
    }
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let normalized = text.replacen(' ', "T", 1);
    if let Ok(t) = normalized.parse::<Timestamp>() {
        return Some(t);
    }
    let civil = normalized.strip_suffix('Z').unwrap_or(&normalized);
    if let Ok(dt) = civil.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    let date: jiff::civil::Date = civil.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form of every timestamp the API server writes (a
/// hunt reads two per request), read directly; `None` for anything else, which jiff then reads
/// (it gives the same instant for this form: see the tests).
fn canonical_utc(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0i64, |n, d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
    };
    // A log's timestamps share their date, line after line: its days are worked out once.
    thread_local! {
        static LAST_DATE: std::cell::Cell<([u8; 10], i64)> = const { std::cell::Cell::new(([0; 10], 0)) };
    }
    let date: [u8; 10] = b[..10].try_into().ok()?;
    let (last, last_days) = LAST_DATE.get();
    let days = if date == last {
        last_days
    } else {
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        // Year 0 is left to jiff.
        let month_ok = (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
        if year == 0 || !month_ok {
            return None;
        }
        let days = days_from_civil(year, month, day);
        LAST_DATE.set((date, days));
        days
    };
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let (mut nanos, mut at) = (0i32, 19);
    if b[at] == b'.' {
        let fraction = &b[at + 1..b.len() - 1];
        if fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
        nanos = fraction.iter().try_fold(0i32, |n, d| d.is_ascii_digit().then(|| n * 10 + i32::from(d - b'0')))?;
        nanos *= 10i32.pow(9 - fraction.len() as u32);
        at = b.len() - 1;
    }
    // A leap second (`:60`) is left to jiff.
    if at + 1 != b.len() || b[at] != b'Z' || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Timestamp::new(seconds, nanos).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `now - age`, or an error saying the age reaches out of range.
pub fn before(now: Timestamp, age: Duration) -> Result<Timestamp, TimeError> {
    now.checked_sub(age.to_signed()).map_err(|_| TimeError::OutOfRange(format!("{age} before {now} is out of range")))
}

/// The one time-argument parser of kir: a timestamp, or an age before the time `clock` gives
/// (`kir_core::now` on the command line). The clock is read only for an age, so a bad
/// `KIR_NOW` does not refuse an absolute time.
pub fn parse_time_arg(
    text: &str,
    clock: impl FnOnce() -> Result<Timestamp, TimeError>,
) -> Result<Timestamp, TimeError> {
    if let Some(t) = parse_timestamp(text) {
        return Ok(t);
    }
    match Duration::parse(text) {
        Ok(age) => before(clock()?, age),
        Err(TimeError::OutOfRange(m)) => Err(TimeError::OutOfRange(m)),
        Err(TimeError::Bad(_)) => Err(TimeError::Bad(format!(
            "{:?} is not a time: write RFC 3339 (2026-11-27T23:50:00Z), a date and time in UTC (2026-11-27 23:50), \
             a date (2026-11-27) or an age (30m, 2h, 7d)",
            text.trim()
        ))),
    }
}

/// kir's clock: `KIR_NOW` (a timestamp) when set, for drills, replays and tests; else the system's.
pub fn now() -> Result<Timestamp, TimeError> {
    match std::env::var("KIR_NOW") {
        Ok(t) if !t.trim().is_empty() => parse_timestamp(&t).ok_or_else(|| {
            TimeError::Bad(format!("KIR_NOW: {t:?} is not a time: write RFC 3339, e.g. 2026-11-27T23:50:00Z"))
        }),
        _ => Ok(Timestamp::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    proptest::proptest! {
        /// The direct reading of the API server's form gives what jiff gives, on any date and
        /// time of the form, valid or not.
        #[test]
        fn the_canonical_form_reads_as_jiff_reads_it(
            year in 0u32..10000, month in 0u32..14, day in 0u32..33, hour in 0u32..26, minute in 0u32..62,
            second in 0u32..62, fraction in proptest::option::of("[0-9]{1,10}"),
        ) {
            let fraction = fraction.map_or(String::new(), |f| format!(".{f}"));
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z");
            let fast = canonical_utc(text.as_bytes());
            if fast.is_some() {
                proptest::prop_assert_eq!(fast, text.parse::<Timestamp>().ok(), "{}", text);
            }
            proptest::prop_assert_eq!(parse_timestamp(&text), text.parse::<Timestamp>().ok(), "{}", text);
            // The same date again, as the next line of a log has it: read from the date's cache.
            let next = format!("{year:04}-{month:02}-{day:02}T{minute:02}:{second:02}:{hour:02}Z");
            proptest::prop_assert_eq!(parse_timestamp(&next), next.parse::<Timestamp>().ok(), "{}", next);
        }
    }

    #[test]
    fn the_canonical_form_is_read_directly() {
        for text in [
            "2026-11-28T00:00:00.024000Z",
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59.999999999Z",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(canonical_utc(text.as_bytes()), text.parse().ok(), "{text}");
            assert!(canonical_utc(text.as_bytes()).is_some(), "{text}");
        }
        for text in [
            "2023-02-29T00:00:00Z",
            "2026-11-28T00:00:00.Z",
            "2026-11-28T00:00:00+00:00",
            "2026-11-28 00:00:00Z",
            "2026-11-28T00:00:60Z",
        ] {
            assert_eq!(canonical_utc(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn timestamps_in_every_form_people_write() {
        let want = ts("2026-11-27T23:50:00Z");
        for text in [
            "2026-11-27T23:50:00Z",
            "2026-11-27 23:50:00Z",
            "2026-11-27 23:50",
            "2026-11-27T23:50",
            " 2026-11-28T00:50:00+01:00 ",
        ] {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
        assert_eq!(parse_timestamp("2026-11-27"), Some(ts("2026-11-27T00:00:00Z")));
        assert_eq!(parse_timestamp("2022-11-29 00:09:04.38"), Some(ts("2022-11-29T00:09:04.38Z")));
        for bad in ["yesterday", "", "2026-13-01", "30m"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_count_back_from_the_given_now() {
        let now = ts("2026-11-28T00:00:00Z");
        assert_eq!(parse_time_arg("2h", || Ok(now)).unwrap(), ts("2026-11-27T22:00:00Z"));
        assert_eq!(parse_time_arg("2026-11-27 23:50", || Ok(now)).unwrap(), ts("2026-11-27T23:50:00Z"));
        let e = parse_time_arg("soon", || Ok(now)).unwrap_err();
        assert!(matches!(e, TimeError::Bad(_)) && e.to_string().contains("not a time"), "{e}");
    }

    #[test]
    fn huge_durations_are_out_of_range_not_panics() {
        let now = ts("2026-11-28T00:00:00Z");
        for text in ["700000w", "99999999999999999999s", "9223372036854775807w", "5300w"] {
            let e = parse_time_arg(text, || Ok(now)).unwrap_err();
            assert!(matches!(e, TimeError::OutOfRange(_)), "{text}: {e}");
            assert!(e.to_string().contains("out of range"), "{e}");
        }
        assert!(parse_time_arg("5200w", || Ok(now)).is_ok());
        let e = before(Timestamp::MIN, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("90m").unwrap().as_secs(), 5400);
        assert_eq!(Duration::parse("0").unwrap().as_secs(), 0);
        assert_eq!(Duration::parse("5400s").unwrap().to_string(), "90m");
        assert_eq!(Duration::parse("1209600s").unwrap().to_string(), "2w");
        for bad in ["", "m", "5", "5 m", "-5m", "5y", "1h30m", "٣m"] {
            assert!(matches!(Duration::parse(bad), Err(TimeError::Bad(_))), "{bad}");
        }
    }

    #[test]
    fn durations_in_yaml_and_json() {
        let d: Duration = serde_json::from_str("\"15m\"").unwrap();
        assert_eq!(d.as_secs(), 900);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"15m\"");
        assert!(serde_json::from_str::<Duration>("15").unwrap_err().to_string().contains("give a unit"));
    }
}
