//! Dates and timestamps of the wire format, parsed and written directly:
//! chrono's general parser and formatter cost more than the rest of a
//! service line. A leaf: it imports nothing from the crate.

/// `YYYY-MM-DD` dates, parsed directly: chrono's general parser costs more
/// than the rest of a service line.
pub mod date {
    use chrono::NaiveDate;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::borrow::Cow;

    pub fn parse(s: &str) -> Option<NaiveDate> {
        parse_bytes(s.as_bytes())
    }

    pub fn parse_bytes(b: &[u8]) -> Option<NaiveDate> {
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
    }

    fn invalid<E: Error>() -> E {
        E::custom("not a valid YYYY-MM-DD date")
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        parse(&s).ok_or_else(invalid)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match Option::<Cow<str>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(invalid),
        }
    }

    /// `YYYY-MM-DD` without the formatting machinery; years outside
    /// 0-9999 never reach here (the parser reads four digits).
    pub fn to_bytes(date: NaiveDate) -> [u8; 10] {
        use chrono::Datelike;
        let (y, m, d) = (date.year().clamp(0, 9999) as u32, date.month(), date.day());
        let digit = |n: u32| b'0' + (n % 10) as u8;
        [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(d / 10),
            digit(d),
        ]
    }

    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&to_bytes(*date)).unwrap_or_default())
    }
}

/// RFC 3339 timestamps: the usual shapes (`2026-03-02T14:00:00Z`, with
/// optional fraction and a `±HH:MM` offset) read directly, anything else
/// through chrono's RFC 3339 parser, which also words the error.
pub mod rfc3339 {
    use chrono::{DateTime, FixedOffset, NaiveDateTime, NaiveTime};
    use serde::{de::Error, Deserialize, Deserializer};
    use std::borrow::Cow;

    pub fn parse(s: &str) -> Result<DateTime<FixedOffset>, chrono::ParseError> {
        match fast(s.as_bytes()) {
            Some(t) => Ok(t),
            None => DateTime::parse_from_rfc3339(s),
        }
    }

    fn two(b: &[u8], i: usize) -> Option<u32> {
        let (h, l) = (*b.get(i)?, *b.get(i + 1)?);
        (h.is_ascii_digit() && l.is_ascii_digit())
            .then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
    }

    fn fast(b: &[u8]) -> Option<DateTime<FixedOffset>> {
        if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date = super::date::parse_bytes(&b[..10])?;
        let (h, m, sec) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
        let mut i = 19;
        let mut nanos = 0;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - start;
            if digits == 0 {
                return None;
            }
            nanos *= 10u32.pow(9u32.saturating_sub(digits as u32));
        }
        let offset = match &b[i..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let (oh, om) = (two(b, i + 1)?, two(b, i + 4)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let secs = (oh * 60 + om) as i32 * 60;
                if *sign == b'-' {
                    -secs
                } else {
                    secs
                }
            }
            _ => return None,
        };
        // Leap seconds (60) and the rest of the unusual go to chrono.
        let local = NaiveDateTime::new(date, NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?);
        let offset = FixedOffset::east_opt(offset)?;
        let utc = local.checked_sub_offset(offset)?;
        Some(DateTime::from_naive_utc_and_offset(utc, offset))
    }

    fn invalid<E: Error>(e: chrono::ParseError) -> E {
        E::custom(format!("not an RFC 3339 timestamp: {e}"))
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        parse(&s).map_err(invalid)
    }

    pub fn optional<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        match Option::<Cow<str>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).map_err(invalid),
        }
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;

        #[test]
        fn agrees_with_chrono_on_hand_picked_cases() {
            for s in [
                "2026-03-02T14:00:00Z",
                "2026-03-02t14:00:00z",
                "2026-03-02T14:00:00.5Z",
                "2026-03-02T14:00:00.123456789+05:30",
                "2026-03-02T14:00:00.1234567891-08:00",
                "2026-03-02T23:59:60Z",
                "2026-03-02 14:00:00Z",
                "2026-02-30T14:00:00Z",
                "2026-03-02T24:00:00Z",
                "2026-03-02T14:00:00+24:00",
                "2026-03-02T14:00:00.Z",
                "2026-03-02T14:00:00",
                "2026-03-02T14:00:00+0530",
                "0000-01-01T00:00:00Z",
            ] {
                assert_eq!(
                    super::parse(s).ok(),
                    chrono::DateTime::parse_from_rfc3339(s).ok(),
                    "{s}"
                );
            }
        }

        proptest! {
            #[test]
            fn agrees_with_chrono(
                y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61,
                s in 0u32..62, frac in proptest::option::of("[0-9]{0,12}"),
                off in prop_oneof![Just("Z".to_owned()), "[+-][0-2][0-9]:[0-6][0-9]"],
            ) {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}");
                prop_assert_eq!(super::parse(&text).ok(), chrono::DateTime::parse_from_rfc3339(&text).ok(), "{}", text);
            }
        }
    }
}
