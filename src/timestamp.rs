//! Timestamps, through jiff: RFC 3339 (UTC) for labels and events, `HH:MM:SS` (UTC) for log lines, RFC 2822 in
//! local time for changelog entries, and docker-pkg's nightly and snapshot tag suffixes (local time).

use std::time::SystemTime;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

fn timestamp(time: SystemTime) -> Timestamp {
    Timestamp::try_from(time).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The local time zone (`TZ`, `/etc/localtime`); UTC when there is none, as `date` does.
fn local(time: SystemTime) -> Zoned {
    timestamp(time).to_zoned(TimeZone::try_system().unwrap_or(TimeZone::UTC))
}

/// `2026-11-23T10:00:00Z`.
pub fn rfc3339(time: SystemTime) -> String {
    timestamp(time).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `10:00:00` (UTC).
pub fn clock(time: SystemTime) -> String {
    timestamp(time).strftime("%H:%M:%S").to_string()
}

/// `Mon, 23 Nov 2026 10:00:00 +0000`: RFC 2822 in local time, exactly as `date -R` prints it (English names,
/// day zero-padded) — the trailer date of a changelog entry written by `update`.
pub fn rfc2822_local(time: SystemTime) -> String {
    rfc2822(&local(time))
}

fn rfc2822(time: &Zoned) -> String {
    time.strftime("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// docker-pkg's nightly (`20261123`) or, with `seconds`, snapshot (`20261123-100000`) tag suffix: local time.
pub fn tag_suffix(time: SystemTime, seconds: bool) -> String {
    let format = if seconds { "%Y%m%d-%H%M%S" } else { "%Y%m%d" };
    local(time).strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(1_795_428_000_500)), "2026-11-23T10:00:00Z");
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
        let at = |secs: u64, zone: &str| {
            let tz = TimeZone::get(zone).unwrap();
            rfc2822(&timestamp(UNIX_EPOCH + Duration::from_secs(secs)).to_zoned(tz))
        };
        assert_eq!(at(1_795_428_000, "UTC"), "Mon, 23 Nov 2026 10:00:00 +0000");
        assert_eq!(at(1_786_255_205, "UTC"), "Sun, 09 Aug 2026 06:00:05 +0000");
        assert_eq!(at(0, "America/St_Johns"), "Wed, 31 Dec 1969 20:30:00 -0330");
        assert_eq!(at(951_782_400, "Europe/Paris"), "Tue, 29 Feb 2000 01:00:00 +0100");
        // Whatever the local zone, the result is a date `update` can write into a changelog.
        let now = rfc2822_local(SystemTime::now());
        assert_eq!(now.len(), "Mon, 23 Nov 2026 10:00:00 +0000".len(), "{now}");
    }
}
