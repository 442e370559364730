//! Timestamps without a date-time crate: RFC 3339 (UTC) for labels and events, `HH:MM:SS` (UTC) for log lines,
//! and RFC 2822 in local time for changelog entries.

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

/// `Mon, 23 Nov 2026 10:00:00 +0000`: RFC 2822 in local time, exactly as `date -R` prints it (English names,
/// day zero-padded) — the trailer date of a changelog entry written by `update`.
pub fn rfc2822_local(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let local = local_time(secs);
    // Without a usable local time zone, UTC is what `date -R` prints too.
    let (tm_secs, offset) = local.unwrap_or((secs, 0));
    rfc2822(tm_secs, offset)
}

/// `secs` (a local wall-clock time, as seconds since the epoch) and its UTC offset in seconds, in RFC 2822.
fn rfc2822(local_secs: u64, offset: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, rest) = (local_secs / 86_400, local_secs % 86_400);
    let (y, mo, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[(days % 7) as usize];
    let month = MONTHS[(mo - 1) as usize];
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        minutes / 60,
        minutes % 60
    )
}

/// docker-pkg's nightly (`20261123`) or, with `seconds`, snapshot (`20261123-100000`) tag suffix: local time.
pub fn tag_suffix(time: SystemTime, seconds: bool) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (local, _) = local_time(secs).unwrap_or((secs, 0));
    let (days, rest) = (local / 86_400, local % 86_400);
    let (y, mo, d) = civil_from_days(days);
    if seconds {
        format!("{y:04}{mo:02}{d:02}-{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
    } else {
        format!("{y:04}{mo:02}{d:02}")
    }
}

/// The local wall-clock time of `secs` (as seconds since the epoch) and the UTC offset, from the C library's
/// time zone rules (`TZ`, `/etc/localtime`); `None` if it cannot say.
fn local_time(secs: u64) -> Option<(u64, i64)> {
    let t = libc::time_t::try_from(secs).ok()?;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    // `c_long` is 32 bits on 32-bit targets, so the conversion is not useless everywhere.
    #[allow(clippy::useless_conversion)]
    let offset = i64::from(tm.tm_gmtoff);
    let local = i64::try_from(secs).ok()?.checked_add(offset)?;
    Some((u64::try_from(local).ok()?, offset))
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

    #[test]
    fn tag_suffixes_have_docker_pkg_shapes() {
        let nightly = tag_suffix(SystemTime::now(), false);
        let snapshot = tag_suffix(SystemTime::now(), true);
        assert_eq!(nightly.len(), 8, "{nightly}");
        assert_eq!(snapshot.len(), 15, "{snapshot}");
        assert!(nightly.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(snapshot.as_bytes()[8], b'-');
    }

    #[test]
    fn rfc2822_is_date_r() {
        assert_eq!(rfc2822(1_795_428_000, 0), "Mon, 23 Nov 2026 10:00:00 +0000");
        assert_eq!(rfc2822(1_786_255_205, 0), "Sun, 09 Aug 2026 06:00:05 +0000");
        assert_eq!(rfc2822(0, -(3600 + 1800)), "Thu, 01 Jan 1970 00:00:00 -0130");
        assert_eq!(rfc2822(951_782_400 + 3600, 3600), "Tue, 29 Feb 2000 01:00:00 +0100");
        // Whatever the local zone, the result is a date `update` can write into a changelog.
        let now = rfc2822_local(SystemTime::now());
        assert_eq!(now.len(), "Mon, 23 Nov 2026 10:00:00 +0000".len(), "{now}");
    }
}
