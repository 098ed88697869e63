//! Domain-free helpers: random ids and strings, the PocketBase datetime format.
//! Must not depend on any other Basalt module.

use rand::Rng;

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A random 15-character `[a-z0-9]` record id, as PocketBase generates them.
pub fn new_record_id() -> String {
    random_from(ID_ALPHABET, 15)
}

/// A random `[a-zA-Z0-9]` string, used for token keys and secrets.
pub fn random_alnum(len: usize) -> String {
    random_from(ALNUM, len)
}

pub fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char).collect()
}

/// Datetimes on the wire and in storage: `YYYY-MM-DD HH:MM:SS.mmmZ`, UTC.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3fZ";

pub fn now_string() -> String {
    format_datetime(chrono::Utc::now())
}

pub fn format_datetime(dt: chrono::DateTime<chrono::Utc>) -> String {
    dt.format(DATETIME_FORMAT).to_string()
}

/// Parses what PocketBase accepts for a date: `2024-01-02`, RFC 3339 (with `T`, `Z` or an
/// offset), and `YYYY-MM-DD HH:MM:SS[.fff][Z]`. Returns `None` for anything else.
pub fn parse_datetime(input: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let s = input.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    let no_z = s.strip_suffix('Z').unwrap_or(s);
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
    {
        if let Ok(n) = NaiveDateTime::parse_from_str(no_z, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
    }
    None
}

/// Converts `camelCase`/`X-Header-Name` style names to `snake_case` (`x_header_name`).
pub fn snake_case(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 4);
    for (i, c) in input.chars().enumerate() {
        if c == '-' || c == ' ' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_pocketbase_shape() {
        let id = new_record_id();
        assert_eq!(id.len(), 15);
        assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
    }

    #[test]
    fn datetimes_parse_and_format() {
        let cases = [
            ("2024-01-02", "2024-01-02 00:00:00.000Z"),
            ("2024-01-02 03:04:05", "2024-01-02 03:04:05.000Z"),
            ("2024-01-02T03:04:05Z", "2024-01-02 03:04:05.000Z"),
            ("2024-01-02T03:04:05+02:00", "2024-01-02 01:04:05.000Z"),
            ("2024-01-02 03:04:05.123Z", "2024-01-02 03:04:05.123Z"),
        ];
        for (input, want) in cases {
            let got = parse_datetime(input).map(format_datetime);
            assert_eq!(got.as_deref(), Some(want), "{input}");
        }
        for bad in ["garbage", "2024/01/02", "1700000000", ""] {
            assert!(parse_datetime(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn snake_cases_header_names() {
        assert_eq!(snake_case("X-Token"), "x_token");
        assert_eq!(snake_case("content-type"), "content_type");
    }
}
