//! Date parts and time zones for the `date` and `currentdate` tests (RFC 5260 §4–5).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// Shift to the server's zone, taken from `Context::now`.
    Local,
    /// Keep the zone the header was written in.
    Original,
    /// Seconds east of UTC.
    Fixed(i32),
}

impl Zone {
    /// `+hhmm` / `-hhmm` (RFC 5260 §4.1).
    pub(crate) fn parse_offset(s: &str) -> Option<Zone> {
        let b = s.as_bytes();
        if b.len() != 5 || !matches!(b[0], b'+' | b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let hours: i32 = s[1..3].parse().ok()?;
        let minutes: i32 = s[3..5].parse().ok()?;
        if minutes > 59 {
            return None;
        }
        let secs = hours * 3600 + minutes * 60;
        FixedOffset::east_opt(secs)?;
        Some(Zone::Fixed(if b[0] == b'-' { -secs } else { secs }))
    }

    pub(crate) fn apply(
        self,
        dt: DateTime<FixedOffset>,
        local: FixedOffset,
    ) -> DateTime<FixedOffset> {
        match self {
            Zone::Original => dt,
            Zone::Local => dt.with_timezone(&local),
            Zone::Fixed(secs) => match FixedOffset::east_opt(secs) {
                Some(z) => dt.with_timezone(&z),
                None => dt,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatePart {
    Year,
    Month,
    Day,
    Date,
    Julian,
    Hour,
    Minute,
    Second,
    Time,
    Iso8601,
    Std11,
    Zone,
    Weekday,
}

impl DatePart {
    pub(crate) fn from_name(s: &str) -> Option<DatePart> {
        Some(match s.to_ascii_lowercase().as_str() {
            "year" => DatePart::Year,
            "month" => DatePart::Month,
            "day" => DatePart::Day,
            "date" => DatePart::Date,
            "julian" => DatePart::Julian,
            "hour" => DatePart::Hour,
            "minute" => DatePart::Minute,
            "second" => DatePart::Second,
            "time" => DatePart::Time,
            "iso8601" => DatePart::Iso8601,
            "std11" => DatePart::Std11,
            "zone" => DatePart::Zone,
            "weekday" => DatePart::Weekday,
            _ => return None,
        })
    }

    pub(crate) fn extract(self, dt: &DateTime<FixedOffset>) -> String {
        match self {
            DatePart::Year => format!("{:04}", dt.year()),
            DatePart::Month => format!("{:02}", dt.month()),
            DatePart::Day => format!("{:02}", dt.day()),
            DatePart::Date => dt.format("%Y-%m-%d").to_string(),
            DatePart::Julian => {
                // Modified Julian Day: days since 1858-11-17.
                let epoch = NaiveDate::from_ymd_opt(1858, 11, 17).unwrap_or_default();
                (dt.date_naive() - epoch).num_days().to_string()
            }
            DatePart::Hour => format!("{:02}", dt.hour()),
            DatePart::Minute => format!("{:02}", dt.minute()),
            DatePart::Second => format!("{:02}", dt.second()),
            DatePart::Time => dt.format("%H:%M:%S").to_string(),
            DatePart::Iso8601 => dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            DatePart::Std11 => dt.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
            DatePart::Zone => dt.format("%z").to_string(),
            DatePart::Weekday => dt.weekday().num_days_from_sunday().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let dt = DateTime::parse_from_rfc3339("2007-02-09T14:27:03-08:00").unwrap();
        let got: Vec<String> = [
            DatePart::Year,
            DatePart::Month,
            DatePart::Day,
            DatePart::Date,
            DatePart::Julian,
            DatePart::Time,
            DatePart::Iso8601,
            DatePart::Std11,
            DatePart::Zone,
            DatePart::Weekday,
        ]
        .iter()
        .map(|p| p.extract(&dt))
        .collect();
        assert_eq!(
            got,
            [
                "2007",
                "02",
                "09",
                "2007-02-09",
                "54140",
                "14:27:03",
                "2007-02-09T14:27:03-08:00",
                "Fri, 09 Feb 2007 14:27:03 -0800",
                "-0800",
                "5"
            ]
        );
        assert_eq!(Zone::parse_offset("+0130"), Some(Zone::Fixed(5400)));
        assert_eq!(Zone::parse_offset("0130"), None);
        assert_eq!(Zone::parse_offset("+0199"), None);
    }
}
