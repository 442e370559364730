//! Debian versions as image tags: dpkg's ordering ([`compare`]) and the automatic bump of `update`
//! ([`bump`]).
//!
//! The bump is docker-pkg's rule wherever docker-pkg has one, with identical results. docker-pkg rejects every
//! version that has anything but digits, `.` and `-` before its optional `-<update_id>N` suffix; for those,
//! imgraph extends the rule (see [`bump`]). Every result is checked to sort strictly higher than the old
//! version under dpkg's ordering and to be a legal Docker tag, so a bump can never go backwards or produce an
//! image that cannot be tagged.

use std::cmp::Ordering;

use crate::reference;

/// Why a version cannot be bumped automatically.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BumpError {
    /// Docker tags cannot hold `:`, and dropping the epoch would make the version sort lower.
    #[error("it has an epoch (`{epoch}:`), which a Docker tag cannot hold; give the image a version without one")]
    Epoch { epoch: String },
    /// The bumped version is not a legal Docker tag (e.g. longer than 128 characters).
    #[error("the bumped version `{new}` is not usable: {why}")]
    IllegalTag { new: String, why: String },
    /// Defensive: the rule produced a version that does not sort higher (never expected).
    #[error("the bumped version `{new}` does not sort after it under Debian version ordering")]
    NotHigher { new: String },
}

/// The next version of an image whose top changelog version is `old`; `id` is the `update_id` config key.
///
/// 1. **docker-pkg's rule**, for the versions docker-pkg accepts (`^([\d\-\.]+?)(-{id}(\d+))?$`): a
///    trailing `-<id>N` becomes `-<id>(N+1)`, anything else gets `-<id>1` appended (`0.1.2` → `0.1.2-s1`,
///    `0.1.2-1-s8` → `0.1.2-1-s9`, `1.0-s01` → `1.0-s2`; with an empty id, `1.0-1-20241211` → `1.0-1-20241212`).
/// 2. **Otherwise** (letters, `~`, `+`, or a `-<id>N` that is not last):
///    * `~` and `+` become `-`, because a Docker tag cannot hold them (`~` sorts before everything in Debian,
///      so no legal tag sorts between `1.0~rc1` and `1.0`: the bump of `1.0~rc1` is `1.0-rc1-s1`);
///    * then the **last** `-<id>N` component is incremented wherever it is, so that weekly-rebuild date suffixes
///      do not pile up (`8.1.33-1-s3-20260816` → `8.1.33-1-s4-20260816`, `1.0-s1-s2` → `1.0-s1-s3`);
///    * with no such component, `-<id>1` is appended (`1.2.3-wmf4` → `1.2.3-wmf4-s1`, `v1.0` → `v1.0-s1`).
///
/// An epoch cannot be bumped (a Docker tag has no `:`). `id` is used literally (docker-pkg interpolates it
/// into its regex unescaped, which only matters for ids holding regex syntax).
pub fn bump(old: &str, id: &str) -> Result<String, BumpError> {
    let new = match docker_pkg_bump(old, id) {
        Some(new) => new,
        None => extended_bump(old, id)?,
    };
    reference::check_tag(&new).map_err(|why| BumpError::IllegalTag { new: new.clone(), why })?;
    if compare(&new, old) != Ordering::Greater {
        return Err(BumpError::NotHigher { new });
    }
    Ok(new)
}

/// docker-pkg's `new_tag`, emulating Python's lazy regex `^([\d\-\.]+?)(-{id}(\d+))?$` exactly: the shortest
/// base (one character or more, digits, `.` and `-` only) after which the rest is empty or `-{id}` and digits.
/// `None` where docker-pkg raises "Was not able to match version".
fn docker_pkg_bump(old: &str, id: &str) -> Option<String> {
    for (end, c) in old.char_indices() {
        if !(c.is_ascii_digit() || c == '.' || c == '-') {
            return None;
        }
        let (base, rest) = old.split_at(end + c.len_utf8());
        if let Some(digits) = rest.strip_prefix('-').and_then(|r| r.strip_prefix(id))
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(format!("{base}-{id}{}", increment(digits)));
        }
        if rest.is_empty() {
            return Some(format!("{base}-{id}1"));
        }
    }
    None
}

/// The rule for the versions docker-pkg rejects (see [`bump`]).
fn extended_bump(old: &str, id: &str) -> Result<String, BumpError> {
    if let Some((epoch, _)) = old.split_once(':') {
        return Err(BumpError::Epoch { epoch: epoch.to_owned() });
    }
    let legal: String = old.chars().map(|c| if c == '~' || c == '+' { '-' } else { c }).collect();
    // The last `-<id>N` that is a whole `-`-separated component (followed by `-` or the end), not at the start.
    let marker = format!("-{id}");
    let last = legal.match_indices(&marker).filter_map(|(at, _)| {
        let start = at + marker.len();
        let digits = legal[start..].bytes().take_while(u8::is_ascii_digit).count();
        let end = start + digits;
        (at > 0 && digits > 0 && (end == legal.len() || legal[end..].starts_with('-'))).then_some((start, end))
    });
    Ok(match last.last() {
        Some((start, end)) => format!("{}{}{}", &legal[..start], increment(&legal[start..end]), &legal[end..]),
        None => format!("{legal}{marker}1"),
    })
}

/// A decimal number plus one, without leading zeros and without overflow (Python's `int(s) + 1`).
fn increment(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    let mut out: Vec<u8> = trimmed.bytes().collect();
    let mut i = out.len();
    loop {
        if i == 0 {
            out.insert(0, b'1');
            break;
        }
        i -= 1;
        if out[i] == b'9' {
            out[i] = b'0';
        } else {
            out[i] += 1;
            break;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// dpkg's version ordering (`dpkg --compare-versions`): epoch numerically, then the upstream version, then the
/// revision (after the last `-`), each with dpkg's `verrevcmp` (`~` before everything, even the end; letters
/// before other characters; digit runs numerically).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (epoch_a, upstream_a, revision_a) = split(a);
    let (epoch_b, upstream_b, revision_b) = split(b);
    compare_numbers(epoch_a, epoch_b)
        .then_with(|| verrevcmp(upstream_a, upstream_b))
        .then_with(|| verrevcmp(revision_a, revision_b))
}

/// `[epoch:]upstream[-revision]`, with a missing epoch as `0` and a missing revision as empty (as dpkg does).
fn split(version: &str) -> (&str, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (epoch, rest),
        None => ("0", version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Compares two runs of digits as numbers of any size.
fn compare_numbers(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's character weight in non-digit parts.
fn order(c: u8) -> i32 {
    match c {
        0 => 0,
        b'~' => -1,
        c if c.is_ascii_digit() => 0,
        c if c.is_ascii_alphabetic() => i32::from(c),
        c => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` (lib/dpkg/version.c), transcribed: alternate non-digit parts (compared by [`order`]) and
/// digit parts (compared numerically).
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(at(a, i)), order(at(b, j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == b'0' {
            i += 1;
        }
        while at(b, j) == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while at(a, i).is_ascii_digit() && at(b, j).is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if at(a, i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if at(b, j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docker-pkg's table (spec §8.1), every value verified against the real `new_tag`: (previous, id `s`,
    /// id `""`, id `wmf`), `None` where docker-pkg raises.
    type Row = (&'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>);

    const DOCKER_PKG_TABLE: [Row; 8] = [
        ("0.1.2", Some("0.1.2-s1"), Some("0.1.2-1"), Some("0.1.2-wmf1")),
        ("0.1.2-3", Some("0.1.2-3-s1"), Some("0.1.2-4"), Some("0.1.2-3-wmf1")),
        ("0.1.2-s1", Some("0.1.2-s2"), None, None),
        ("0.1.2-1-s8", Some("0.1.2-1-s9"), None, None),
        ("1.2.3-4-s9", Some("1.2.3-4-s10"), None, None),
        ("1.0-s01", Some("1.0-s2"), None, None),
        ("1", Some("1-s1"), Some("1-1"), Some("1-wmf1")),
        ("1.0-1-20241211", Some("1.0-1-20241211-s1"), Some("1.0-1-20241212"), Some("1.0-1-20241211-wmf1")),
    ];

    /// Versions docker-pkg rejects with every id.
    const DOCKER_PKG_REJECTS: [&str; 6] = ["0.0.1~alpha1", "1.0+deb1", "1.0-1~wmf2", "v1.0", "1.0-s", "1.0-s1-s2"];

    #[test]
    fn update_bump_matches_docker_pkg_table_all_three_ids() {
        for (previous, s, empty, wmf) in DOCKER_PKG_TABLE {
            for (id, expected) in [("s", s), ("", empty), ("wmf", wmf)] {
                assert_eq!(docker_pkg_bump(previous, id).as_deref(), expected, "{previous} with id {id:?}");
                if let Some(expected) = expected {
                    assert_eq!(bump(previous, id).as_deref(), Ok(expected), "{previous} with id {id:?}");
                }
            }
        }
        for previous in DOCKER_PKG_REJECTS {
            for id in ["s", "", "wmf"] {
                assert_eq!(docker_pkg_bump(previous, id), None, "{previous} with id {id:?}");
            }
        }
    }

    #[test]
    fn update_bump_extends_to_what_docker_pkg_rejects() {
        for (previous, id, expected) in [
            ("0.0.1~alpha1", "s", "0.0.1-alpha1-s1"),
            ("1.0+deb1", "s", "1.0-deb1-s1"),
            ("1.0-1~wmf2", "s", "1.0-1-wmf2-s1"),
            ("1.0-1~wmf2", "", "1.0-2-wmf2"),
            ("1.0-1~wmf2", "wmf", "1.0-1-wmf3"),
            ("v1.0", "s", "v1.0-s1"),
            ("v1.0", "", "v1.0-1"),
            ("1.0-s", "s", "1.0-s-s1"),
            ("1.0-s1-s2", "s", "1.0-s1-s3"),
            ("1.0-s1-s2", "", "1.0-s1-s2-1"),
            ("1.2.3-wmf4", "s", "1.2.3-wmf4-s1"),
            ("1.2.3-wmf4", "wmf", "1.2.3-wmf5"),
            ("0.0.3-20250601-s1-20260816", "s", "0.0.3-20250601-s2-20260816"),
            ("8.1.33-1-s3-20260816", "s", "8.1.33-1-s4-20260816"),
            ("8.1.33-1-s9-20260816", "s", "8.1.33-1-s10-20260816"),
            ("1.14.0-wmf0-20260816", "s", "1.14.0-wmf0-20260816-s1"),
            ("2.1.2rocm5.6-3-20260816", "s", "2.1.2rocm5.6-3-20260816-s1"),
            ("v20220915-3", "s", "v20220915-3-s1"),
            ("v20220915-3", "", "v20220915-4"),
            ("9.0.4-20260107.e9ce92c-20260816", "s", "9.0.4-20260107.e9ce92c-20260816-s1"),
            // `-s1x` and a leading `s1` are not `-<id>N` components.
            ("1.0-s1x", "s", "1.0-s1x-s1"),
            ("s1", "s", "s1-s1"),
        ] {
            assert_eq!(bump(previous, id).as_deref(), Ok(expected), "{previous} with id {id:?}");
        }
    }

    #[test]
    fn update_bump_refusals_say_why() {
        assert_eq!(bump("1:2.0-1", "s"), Err(BumpError::Epoch { epoch: "1".into() }));
        let long = format!("1.{}", "0".repeat(126));
        assert!(matches!(bump(&long, "s"), Err(BumpError::IllegalTag { .. })));
        // An id that makes the result sort lower (`~` before everything) is refused, not written.
        assert!(matches!(bump("1.0", "~"), Err(BumpError::IllegalTag { .. })));
    }

    #[test]
    fn update_bump_increments_like_python_int() {
        assert_eq!(increment("0"), "1");
        assert_eq!(increment("01"), "2");
        assert_eq!(increment("009"), "10");
        assert_eq!(increment("99999999999999999999999999"), "100000000000000000000000000");
    }

    #[test]
    fn update_checks_with_dpkg_ordering() {
        use Ordering::{Equal, Greater, Less};
        for (a, b, expected) in [
            ("1.0", "1.0", Equal),
            ("1.01", "1.1", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.10", "1.9", Greater),
            ("1.0", "1.0-1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0+deb1", "1.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0.1", "1.0a", Greater),
            ("1.0a", "1.0+", Less),
            ("1:0.1", "2.0", Greater),
            ("10:1", "9:2", Greater),
            ("1.2.3-1", "1.2.3", Greater),
            ("1.2.3-10", "1.2.3-9", Greater),
            ("1.0-1", "1.0-1.1", Less),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("0.0.1-alpha1-s1", "0.0.1~alpha1", Greater),
            ("8.1.33-1-s4", "8.1.33-1-s3-20260816", Less),
            ("8.1.33-1-s4-20260816", "8.1.33-1-s3-20260816", Greater),
            ("2.1.2rocm5.6-3-20260816-s1", "2.1.2rocm5.6-3-20260816", Greater),
            ("99999999999999999999", "99999999999999999998", Greater),
        ] {
            assert_eq!(compare(a, b), expected, "{a} vs {b}");
            assert_eq!(compare(b, a), expected.reverse(), "{b} vs {a}");
        }
    }
}
