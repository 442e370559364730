//! UTC timestamps without a date-time crate: RFC 3339 for labels and events, `HH:MM:SS` for log lines.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-23T10:00:00Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let (date, (h, m, s)) = split(time);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

/// `10:00:00` (UTC).
pub fn clock(time: SystemTime) -> String {
    let (_, (h, m, s)) = split(time);
    format!("{h:02}:{m:02}:{s:02}")
}

fn split(time: SystemTime) -> (String, (u64, u64, u64)) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, mo, d) = civil_from_days(days);
    (format!("{y:04}-{mo:02}-{d:02}"), (rest / 3600, rest % 3600 / 60, rest % 60))
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (non-negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_428_000)), "2026-11-23T10:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(clock(UNIX_EPOCH + Duration::from_secs(1_795_428_000 + 61)), "10:01:01");
    }
}
