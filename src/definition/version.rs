//! Debian versions, the one home of their grammar: dpkg's syntax check ([`Version::check`]), dpkg's ordering
//! ([`Version::cmp_dpkg`]), the automatic bump of `update` ([`Version::bump`]) and python-debian's reading of
//! an upstream version, which docker-pkg's `upstream_version` filter relies on ([`python_debian_upstream`]).
//!
//! The bump is docker-pkg's rule wherever docker-pkg has one, with identical results. docker-pkg rejects every
//! version that has anything but digits, `.` and `-` before its optional `-<update_id>N` suffix; for those,
//! imgraph extends the rule (see [`Version::bump`]). Every result is checked to sort strictly higher than the
//! old version under dpkg's ordering and to be a legal Docker tag, so a bump can never go backwards or produce
//! an image that cannot be tagged.

use std::cmp::Ordering;
use std::fmt;

use crate::reference;

/// A Debian version string, kept exactly as written (it is also the image's tag).
///
/// Any text can be held: a changelog header is read as dpkg reads it, where a version that breaks the syntax
/// rules only draws a warning ([`Version::check`]). Versions a user types are parsed strictly
/// ([`Version::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

/// Why a version breaks dpkg's syntax rules (dpkg's own wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VersionError(String);

impl Version {
    /// Holds `text` as written, checked or not.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// A version that follows dpkg's syntax rules.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let version = Self::new(text);
        version.check()?;
        Ok(version)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// dpkg's `version_check`: `[epoch:]upstream[-revision]`, the epoch a number, the upstream part made of
    /// letters, digits and `.+-~:`, the revision of letters, digits and `+.~`. dpkg also wants the upstream part
    /// to start with a digit, but only warns, and real images use `v20220915-3`: a letter is fine here.
    pub fn check(&self) -> Result<(), VersionError> {
        let fail = |message: String| Err(VersionError(message));
        let text = self.0.as_str();
        if text.trim().is_empty() {
            return fail("version number is empty".into());
        }
        if text.contains(char::is_whitespace) {
            return fail("version number contains embedded spaces".into());
        }
        let (epoch, rest) = text.split_once(':').map_or((None, text), |(e, r)| (Some(e), r));
        if let Some(epoch) = epoch
            && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()))
        {
            return fail(format!("epoch part of the version number is not a number: '{epoch}'"));
        }
        if rest.is_empty() {
            return fail("nothing after colon in version number".into());
        }
        let (upstream, revision) = rest.rsplit_once('-').map_or((rest, None), |(u, r)| (u, Some(r)));
        if revision == Some("") {
            return fail("revision number is empty".into());
        }
        if !upstream.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return fail("version number does not start with a letter or digit".into());
        }
        if upstream.contains(|c: char| !(c.is_ascii_alphanumeric() || ".-+~:".contains(c))) {
            return fail("invalid character in version number".into());
        }
        if revision.is_some_and(|r| r.contains(|c: char| !(c.is_ascii_alphanumeric() || "+.~".contains(c)))) {
            return fail("invalid character in revision number".into());
        }
        Ok(())
    }

    /// Why this version cannot be a Docker tag, if it cannot.
    pub fn tag_problem(&self) -> Option<String> {
        reference::check_tag(&self.0).err()
    }

    /// dpkg's version ordering (`dpkg --compare-versions`): epoch numerically, then the upstream version, then
    /// the revision (after the last `-`), each with dpkg's `verrevcmp` (`~` before everything, even the end;
    /// letters before other characters; digit runs numerically). Not `Ord`: `1.01` and `1.1` are equal here.
    pub fn cmp_dpkg(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }

    /// The next version of an image whose top changelog version is this one; `id` is the `update_id` config key.
    ///
    /// 1. **docker-pkg's rule**, for the versions docker-pkg accepts (`^([\d\-\.]+?)(-{id}(\d+))?$`): a
    ///    trailing `-<id>N` becomes `-<id>(N+1)`, anything else gets `-<id>1` appended (`0.1.2` → `0.1.2-s1`,
    ///    `0.1.2-1-s8` → `0.1.2-1-s9`, `1.0-s01` → `1.0-s2`; with an empty id, `1.0-1-20241211` →
    ///    `1.0-1-20241212`).
    /// 2. **Otherwise** (letters, `~`, `+`, or a `-<id>N` that is not last):
    ///    * `~` and `+` become `-`, because a Docker tag cannot hold them (`~` sorts before everything in
    ///      Debian, so no legal tag sorts between `1.0~rc1` and `1.0`: the bump of `1.0~rc1` is `1.0-rc1-s1`);
    ///    * then the **last** `-<id>N` component is incremented wherever it is, so that weekly-rebuild date
    ///      suffixes do not pile up (`8.1.33-1-s3-20260816` → `8.1.33-1-s4-20260816`, `1.0-s1-s2` →
    ///      `1.0-s1-s3`);
    ///    * with no such component, `-<id>1` is appended (`1.2.3-wmf4` → `1.2.3-wmf4-s1`, `v1.0` → `v1.0-s1`).
    ///
    /// An epoch cannot be bumped (a Docker tag has no `:`). `id` is used literally (docker-pkg interpolates it
    /// into its regex unescaped, which only matters for ids holding regex syntax).
    pub fn bump(&self, id: &str) -> Result<Self, BumpError> {
        let new = match docker_pkg_bump(&self.0, id) {
            Some(new) => new,
            None => extended_bump(&self.0, id)?,
        };
        reference::check_tag(&new).map_err(|why| BumpError::IllegalTag { new: new.clone(), why })?;
        if compare(&new, &self.0) != Ordering::Greater {
            return Err(BumpError::NotHigher { new });
        }
        Ok(Self(new))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `debian.debian_support.BaseVersion(version).upstream_version`: the version without its epoch and revision,
/// or `None` when python-debian rejects it. Its regex is
/// `^((?P<epoch>\d+):)?(?P<upstream_version>[A-Za-z0-9.+:~-]+?)(-(?P<debian_revision>[A-Za-z0-9+.~]+))?$`
/// and an upstream version may only contain `:` when there is an epoch. It is laxer than dpkg (no leading
/// digit needed, an empty revision stays in the upstream part), and docker-pkg's output depends on that.
pub fn python_debian_upstream(version: &str) -> Option<&str> {
    let (has_epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => (true, rest),
        _ => (false, version),
    };
    let upstream_ok = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~-".contains(&b) || (b == b':' && has_epoch))
    };
    let revision_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+.~".contains(&b));
    // The upstream part is matched lazily: the revision is whatever follows the last `-`, if it is valid.
    if let Some((upstream, revision)) = rest.rsplit_once('-')
        && upstream_ok(upstream)
        && revision_ok(revision)
    {
        return Some(upstream);
    }
    upstream_ok(rest).then_some(rest)
}

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

/// dpkg's ordering of two version strings (see [`Version::cmp_dpkg`]).
fn compare(a: &str, b: &str) -> Ordering {
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

    fn bumped(old: &str, id: &str) -> Result<String, BumpError> {
        Version::new(old).bump(id).map(|v| v.as_str().to_owned())
    }

    #[test]
    fn syntax_is_dpkg_s() {
        for ok in ["1.0", "1:2.0~rc1+b1-1.1", "1:1.0:2-1", "0.0.1~alpha1", "2.1.2rocm5.6-3-20260816", "v20220915-3"] {
            assert_eq!(Version::parse(ok).map(|v| v.to_string()), Ok(ok.to_owned()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("1.0 beta", "embedded spaces"),
            ("x:1.0", "epoch part of the version number is not a number: 'x'"),
            ("1:", "nothing after colon"),
            ("1.0-", "revision number is empty"),
            (".1.0", "does not start with a letter or digit"),
            ("1.0_1", "invalid character in version number"),
            ("1.0-a_b", "invalid character in revision number"),
        ] {
            let message = Version::parse(bad).unwrap_err().to_string();
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn python_debian_upstream_is_laxer_than_dpkg() {
        assert_eq!(python_debian_upstream("1.63.0-1"), Some("1.63.0"));
        assert_eq!(python_debian_upstream("2:1.0-1"), Some("1.0"));
        assert_eq!(python_debian_upstream("1.0-"), Some("1.0-"));
        assert_eq!(python_debian_upstream("v1.0"), Some("v1.0"));
        assert_eq!(python_debian_upstream("1_0-1"), None);
        assert_eq!(python_debian_upstream("a:0-1"), None);
    }

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
                    assert_eq!(bumped(previous, id), Ok(expected.to_owned()), "{previous} with id {id:?}");
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
            assert_eq!(bumped(previous, id), Ok(expected.to_owned()), "{previous} with id {id:?}");
        }
    }

    #[test]
    fn update_bump_refusals_say_why() {
        assert_eq!(bumped("1:2.0-1", "s"), Err(BumpError::Epoch { epoch: "1".into() }));
        let long = format!("1.{}", "0".repeat(126));
        assert!(matches!(bumped(&long, "s"), Err(BumpError::IllegalTag { .. })));
        // An id that makes the result sort lower (`~` before everything) is refused, not written.
        assert!(matches!(bumped("1.0", "~"), Err(BumpError::IllegalTag { .. })));
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

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &["1", "0", "99", ".", "-", "~", "+", ":", "s", "s1", "wmf", "rc", "a", "20260816"];

        proptest! {
            #[test]
            fn ordering_is_total_and_consistent(a in crate::fuzz::text(TOKENS), b in crate::fuzz::text(TOKENS)) {
                let (a, b) = (Version::new(a), Version::new(b));
                prop_assert_eq!(a.cmp_dpkg(&a), Ordering::Equal);
                prop_assert_eq!(a.cmp_dpkg(&b), b.cmp_dpkg(&a).reverse());
                let _ = a.check();
            }

            #[test]
            fn a_bump_sorts_higher_and_is_a_legal_tag(old in crate::fuzz::text(TOKENS), id in "[a-z]{0,3}") {
                let old = Version::new(old);
                if let Ok(new) = old.bump(&id) {
                    prop_assert_eq!(new.cmp_dpkg(&old), Ordering::Greater);
                    prop_assert_eq!(new.tag_problem(), None);
                }
            }
        }
    }
}
