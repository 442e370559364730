//! The top entry of a Debian `changelog`: the image's name and version.
//!
//! Only the first entry matters (never the highest version), so the file is streamed and reading stops at the
//! end of that entry; real changelogs hold up to a couple of hundred entries. The entry is read as dpkg reads
//! it (`Dpkg::Changelog::Debian`), hand-written because dpkg's leniency is the feature: a header is required,
//!
//! ```text
//! package (version) distribution[ distribution...]; urgency=value[, key=value...]
//!
//!   * change lines, indented
//!
//!  -- Maintainer Name <email>  Sun, 16 Aug 2026 06:00:05 +0000
//! ```
//!
//! and everything dpkg only warns about is a warning here too: lines before the header, a missing or badly
//! formatted trailer (such as `Thu Mar 9 11:41:33 2023 +0100`), missing blank lines, odd keywords after the
//! `;`, a version that breaks Debian's syntax rules (whether it can be a Docker tag is checked elsewhere).

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::definition::version::Version;
use crate::files;

/// The first (topmost) entry of a changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    /// Package name: the image's short name.
    pub package: String,
    /// Version exactly as written: the image's tag.
    pub version: Version,
    /// 1-based line of the entry's header.
    pub line: usize,
    /// What dpkg would warn about, with its line: the entry is usable all the same.
    pub warnings: Vec<(usize, String)>,
}

/// A changelog that cannot be read, or that has no entry at all.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ChangelogError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// What the header and the trailer look like, for messages.
const HEADER: &str = "`package (version) distribution; urgency=...`";
const TRAILER: &str = "` -- Name <email>  date`";

/// Reads only as much of `path` as the top entry needs (a regular file, within [`files::CHANGELOG_LIMIT`]).
pub fn read_top_entry(path: &Path) -> Result<TopEntry, ChangelogError> {
    let file = files::open(path, files::CHANGELOG_LIMIT).map_err(|e| ChangelogError {
        path: path.to_owned(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    top_entry_from(path, BufReader::new(file))
}

/// The top entry of changelog text already in hand (`path` only names it in errors); `update` checks the
/// changelogs it is about to write with this.
pub fn top_entry_from(path: &Path, reader: impl BufRead) -> Result<TopEntry, ChangelogError> {
    let error = |line, message| ChangelogError { path: path.to_owned(), line, message };
    parse_top_entry(reader).map_err(|p| match p {
        Problem::Io(e) => error(None, format!("cannot read: {}", files::ReadError::from(e))),
        Problem::At(line, message) => error(Some(line), message),
    })
}

/// A new top entry exactly as docker-pkg's `update` writes it (python-debian's `new_block` serialised):
/// `urgency=high`, a blank line, each reason line indented by three spaces (no bullet added), a blank line,
/// the trailer, and a blank line before the old entries. `newline` is the file's own line ending.
pub fn format_entry(entry: &NewEntry<'_>, newline: &str) -> String {
    let NewEntry { package, version, distribution, reason, author, email, date } = entry;
    let mut text = format!("{package} ({version}) {distribution}; urgency=high{newline}{newline}");
    for line in reason.lines() {
        text.push_str(&format!("   {line}{newline}"));
    }
    text.push_str(&format!("{newline} -- {author} <{email}>  {date}{newline}{newline}"));
    text
}

/// What [`format_entry`] writes.
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub distribution: &'a str,
    /// Change text; one changelog line per line.
    pub reason: &'a str,
    pub author: &'a str,
    pub email: &'a str,
    /// RFC 2822, as `date -R` prints it.
    pub date: &'a str,
}

enum Problem {
    Io(io::Error),
    At(usize, String),
}

/// Hands out lines one at a time, without the line ending (`\n` or `\r\n`), with their 1-based numbers. Bytes
/// that are not UTF-8 are replaced (dpkg reads bytes); `invalid_utf8` remembers the first such line.
struct Lines<R> {
    reader: R,
    number: usize,
    buffer: Vec<u8>,
    /// Whether the last line read ended with a newline, for the line number of "end of file".
    newline: bool,
    invalid_utf8: Option<usize>,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> Result<Option<(usize, String)>, Problem> {
        self.buffer.clear();
        if self.reader.read_until(b'\n', &mut self.buffer).map_err(Problem::Io)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.newline = self.buffer.ends_with(b"\n");
        let line = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            self.invalid_utf8.get_or_insert(self.number);
        }
        Ok(Some((self.number, text.into_owned())))
    }

    /// The line where something missing at the end of the file was expected.
    fn end(&self) -> usize {
        if self.newline || self.number == 0 { self.number + 1 } else { self.number }
    }
}

/// Where the parser is within the top entry (dpkg's `$expect`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    StartOfChanges,
    ChangesOrTrailer,
}

impl Expect {
    fn as_str(self) -> &'static str {
        match self {
            Expect::StartOfChanges => "start of change data",
            Expect::ChangesOrTrailer => "more change data or trailer",
        }
    }
}

fn parse_top_entry(reader: impl BufRead) -> Result<TopEntry, Problem> {
    let mut lines = Lines { reader, number: 0, buffer: Vec::new(), newline: false, invalid_utf8: None };
    let mut warnings = Vec::new();

    // Lines before the first header are skipped, as dpkg does (with a warning for those that are not blank).
    let (line, header) = loop {
        let Some((number, text)) = lines.next()? else {
            // The first line that is not blank says most about what is wrong with a file that has no header.
            return Err(match warnings.first() {
                Some(&(line, _)) => Problem::At(line, format!("no changelog entry: no line is a header {HEADER}")),
                None => Problem::At(lines.end(), "empty changelog".into()),
            });
        };
        if let Some(header) = parse_header(&text) {
            break (number, header);
        }
        if !text.trim().is_empty() {
            warnings.push((number, format!("expected a header {HEADER}: this line is skipped, as dpkg does")));
        }
    };
    warnings.extend(header.warnings.iter().map(|w| (line, w.clone())));

    // dpkg's state machine, for the top entry only: it ends at its trailer or at the next header.
    let mut expect = Expect::StartOfChanges;
    loop {
        let Some((number, text)) = lines.next()? else {
            warnings.push((lines.end(), format!("found end of file where expected {}", expect.as_str())));
            break;
        };
        if parse_header(&text).is_some() {
            warnings.push((number, format!("found start of entry where expected {}", expect.as_str())));
            break;
        }
        if text.trim().is_empty() {
            continue;
        }
        if text.starts_with(" --") {
            if expect == Expect::StartOfChanges {
                warnings.push((number, "found trailer where expected start of change data".into()));
            }
            if let Err(why) = check_trailer(&text) {
                warnings.push((number, why));
            }
            break;
        }
        if text.len() > 2 && text.starts_with(char::is_whitespace) && text[1..].starts_with(char::is_whitespace) {
            expect = Expect::ChangesOrTrailer;
        } else if text.starts_with(char::is_whitespace) {
            warnings.push((number, "unrecognized line (change lines are indented by at least two spaces)".into()));
        } else {
            warnings.push((number, format!("badly formatted heading line: expected a change line or {TRAILER}")));
        }
    }
    if let Some(number) = lines.invalid_utf8 {
        warnings.push((number, "invalid UTF-8 (read as replacement characters)".into()));
    }
    warnings.sort_by_key(|(line, _)| *line);
    Ok(TopEntry { package: header.package, version: Version::new(header.version), line, warnings })
}

struct Header {
    package: String,
    version: String,
    /// dpkg's `check_header` warnings.
    warnings: Vec<String>,
}

/// dpkg's header regex, `^(\w[-+0-9a-z.]*) \(([^\(\) \t]+)\)((?:\s+[-+0-9a-z.]+)+)\;(.*?)\s*$` (case-insensitive),
/// then its `check_header` warnings; `None` when the line is not a header at all.
fn parse_header(text: &str) -> Option<Header> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || "-+.".contains(c);
    let (package, rest) = text.split_once(" (")?;
    let first_ok = package.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !package.chars().skip(1).all(name_char) {
        return None;
    }
    let (version, rest) = rest.split_once(')')?;
    if version.is_empty() || version.contains(['(', ' ', '\t']) {
        return None;
    }
    let (distributions, options) = rest.split_once(';')?;
    let names: Vec<&str> = distributions.split_whitespace().collect();
    if !distributions.starts_with(char::is_whitespace)
        || names.is_empty()
        || !names.iter().all(|n| n.chars().all(name_char))
    {
        return None;
    }
    let mut warnings = keyword_warnings(options.trim());
    if let Err(why) = Version::new(version).check() {
        warnings.push(format!("version '{version}' is invalid: {why}"));
    }
    Some(Header { package: package.to_owned(), version: version.to_owned(), warnings })
}

/// dpkg's checks of the `key=value` list after the `;`.
fn keyword_warnings(options: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let parsed = option.split_once('=').map(|(k, v)| (k.trim_end(), v.trim()));
        let Some((key, value)) = parsed.filter(|(k, v)| {
            !k.is_empty() && !v.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }) else {
            warnings.push(format!("bad key-value after ';': '{option}'"));
            continue;
        };
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            warnings.push(format!("repeated key-value {key}"));
        }
        match key.as_str() {
            "urgency" if !value.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-') => {
                warnings.push(format!("badly formatted urgency value: {value}"));
            }
            "binary-only" if value != "yes" => warnings.push(format!("bad binary-only value: {value}")),
            "urgency" | "binary-only" => {}
            other if other.starts_with('x') && other.contains('-') => {}
            other => warnings.push(format!("unknown key-value {other}")),
        }
        seen.push(key);
    }
    warnings
}

/// The trailer line, ` -- Name <email>  date`: `Err` with what dpkg would warn about.
fn check_trailer(text: &str) -> Result<(), String> {
    let Some(rest) = text.strip_prefix(" -- ") else {
        return Err(format!("badly formatted trailer line (it must start with ` -- `): {TRAILER}"));
    };
    // `>  ` ends the address; taking the first one copes with `Name <Name <mail>>` (seen in real changelogs).
    let Some(end) = rest.find(">  ").or_else(|| rest.find("> ")) else {
        return Err(format!("badly formatted trailer line (no `<email>` followed by the date): {TRAILER}"));
    };
    let who = &rest[..=end];
    let maintainer = who.split('<').next().unwrap_or_default().trim();
    if maintainer.is_empty() || !who.contains('<') {
        return Err(format!("badly formatted trailer line (no maintainer name): {TRAILER}"));
    }
    if !rest[end..].starts_with(">  ") {
        return Err("badly formatted trailer line (two spaces are required between `>` and the date)".into());
    }
    let date = rest[end + 3..].trim();
    check_date(date).map_err(|why| format!("cannot parse non-conformant date '{date}': {why}"))
}

/// RFC 2822 date with a numeric zone, e.g. `Sun, 16 Aug 2026 06:00:05 +0000` (weekday optional, not cross-checked).
fn check_date(date: &str) -> Result<(), String> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let expected = || "expected an RFC 2822 date like `Sun, 16 Aug 2026 06:00:05 +0000`".to_owned();
    let number = |s: &str, digits: std::ops::RangeInclusive<usize>| {
        (digits.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten()
    };

    let mut words: Vec<&str> = date.split_whitespace().collect();
    if let Some(day) = words.first().and_then(|w| w.strip_suffix(',')) {
        if !DAYS.contains(&day) {
            return Err(format!("`{day}` is not a day of the week"));
        }
        words.remove(0);
    }
    let [day, month, year, time, zone] = words[..] else {
        return Err(expected());
    };
    let day = number(day, 1..=2).ok_or_else(expected)?;
    let month = MONTHS.iter().position(|&m| m == month).ok_or_else(|| format!("`{month}` is not a month"))?;
    let year = number(year, 4..=4).ok_or_else(expected)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if day == 0 || day > month_days[month] {
        return Err(format!("day {day} is not in {}", MONTHS[month]));
    }

    let time: Vec<Option<u32>> = time.split(':').map(|t| number(t, 2..=2)).collect();
    let in_range = match time[..] {
        [Some(h), Some(m)] => h < 24 && m < 60,
        [Some(h), Some(m), Some(s)] => h < 24 && m < 60 && s <= 60,
        _ => return Err(expected()),
    };
    if !in_range {
        return Err("the time of day is out of range".into());
    }

    let zone = zone.strip_prefix(['+', '-']).and_then(|z| number(z, 4..=4)).ok_or_else(expected)?;
    if zone % 100 >= 60 {
        return Err("the time zone offset is out of range".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const TRAILER_LINE: &str = " -- Jane Doe <jane@example.org>  Sun, 16 Aug 2026 06:00:05 +0000";

    fn parse(text: &[u8]) -> Result<TopEntry, (Option<usize>, String)> {
        top_entry_from(Path::new("changelog"), text).map_err(|e| (e.line, e.message))
    }

    fn entry(header: &str, trailer: &str) -> String {
        format!("{header}\n\n  * Change.\n\n{trailer}\n")
    }

    fn error(text: &str) -> (Option<usize>, String) {
        parse(text.as_bytes()).unwrap_err()
    }

    /// The warnings of a changelog that must still be usable, as `line: message`.
    fn warnings(text: &str) -> Vec<String> {
        let top = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        top.warnings.iter().map(|(line, message)| format!("{line}: {message}")).collect()
    }

    #[test]
    fn reads_the_top_entry() {
        let text = format!(
            "foo-bar (1.0-2) wikimedia bookworm; urgency=medium, binary-only=yes\n\n  * Two.\n\n{TRAILER_LINE}\n\n{}",
            entry("foo-bar (1.0-1) wikimedia; urgency=low", TRAILER_LINE)
        );
        let top = parse(text.as_bytes()).unwrap();
        assert_eq!(
            top,
            TopEntry { package: "foo-bar".into(), version: Version::new("1.0-2"), line: 1, warnings: Vec::new() }
        );
    }

    #[test]
    fn first_entry_wins_over_higher_versions() {
        let text = entry("foo (1.0-1) wmf; urgency=medium", TRAILER_LINE)
            + "\n"
            + &entry("foo (9.0-1) wmf; urgency=medium", TRAILER_LINE);
        assert_eq!(parse(text.as_bytes()).unwrap().version.as_str(), "1.0-1");
    }

    #[test]
    fn stops_at_the_trailer() {
        // Whatever follows the top entry is not read, even if it is not a changelog at all.
        let text = entry("foo (1.0) wmf; urgency=medium", TRAILER_LINE);
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"garbage \xff\n");
        let top = parse(&bytes).unwrap();
        assert_eq!((top.version.as_str(), top.warnings.len()), ("1.0", 0));
    }

    #[test]
    fn tolerates_what_real_changelogs_have() {
        let crlf = entry("foo (1:2.0~rc1+b1-1.1) wmf; urgency=medium", TRAILER_LINE).replace('\n', "\r\n");
        assert_eq!(parse(crlf.as_bytes()).unwrap().version.as_str(), "1:2.0~rc1+b1-1.1");
        let nested = " -- Jane Doe <Jane Doe <jane@example.org>>  Fri, 13 Oct 2071 18:49:14 +0200";
        assert!(warnings(entry("foo (0.0.1~alpha1) wmf; urgency=medium", nested).trim_end()).is_empty());
        let leading_blank = format!("\n{}", entry("foo (1.0) wmf; urgency=medium", TRAILER_LINE));
        assert_eq!(parse(leading_blank.as_bytes()).unwrap().line, 2);
        let no_weekday = " -- Jane <j@example.org>  16 Aug 2026 06:00 -0130";
        assert!(warnings(&entry("foo (1.0) wmf; urgency=medium", no_weekday)).is_empty());
        // Uppercase names pass dpkg's header rule; whether Docker takes them is checked with the tag.
        assert_eq!(parse(entry("Foo (1.0) wmf; urgency=medium", TRAILER_LINE).as_bytes()).unwrap().package, "Foo");
    }

    #[test]
    fn a_header_is_required() {
        assert_eq!(error(""), (Some(1), "empty changelog".into()));
        assert_eq!(error("\n  \n"), (Some(3), "empty changelog".into()));
        let (line, message) = error("this is not a changelog\n");
        assert_eq!(line, Some(1));
        assert!(message.starts_with("no changelog entry: no line is a header"), "{message}");
        for not_a_header in
            ["  foo (1.0) wmf; urgency=medium", "foo (1.0) wmf", "foo (1.0) ; urgency=medium", "-x (1) a;"]
        {
            assert!(error(&format!("{not_a_header}\n")).1.starts_with("no changelog entry"), "{not_a_header}");
        }
        let err = read_top_entry(Path::new("/nonexistent/changelog")).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (None, "cannot read: no such file"));
    }

    #[test]
    fn lines_before_the_header_are_skipped_with_a_warning() {
        let text = format!("garbage\n{}", entry("foo (1.0) wmf; urgency=medium", TRAILER_LINE));
        let top = parse(text.as_bytes()).unwrap();
        assert_eq!((top.package.as_str(), top.line), ("foo", 2));
        assert_eq!(top.warnings.len(), 1);
        assert!(top.warnings[0].1.starts_with("expected a header"), "{:?}", top.warnings);
    }

    #[test]
    fn what_dpkg_only_warns_about_is_a_warning() {
        let header = "foo (1.0) wmf; urgency=medium";
        assert_eq!(
            warnings("foo (1.0) wmf; urgency=medium\n\n  * Change.\n"),
            ["4: found end of file where expected more change data or trailer"]
        );
        assert_eq!(
            warnings(&format!("{header}\n\n  * One.\n\n{}", entry("foo (0.9) wmf; urgency=low", TRAILER_LINE))),
            ["5: found start of entry where expected more change data or trailer"]
        );
        assert_eq!(
            warnings(&format!("{header}\n\n{TRAILER_LINE}\n")),
            ["3: found trailer where expected start of change data"]
        );
        assert_eq!(warnings(&format!("{header}\n  * x\n{TRAILER_LINE}\n")), Vec::<String>::new());
        assert_eq!(warnings(&format!("{header}\n\n  * One.\nnot indented\n\n{TRAILER_LINE}\n")).len(), 1);
        assert_eq!(
            warnings(
                "foo (1.0) wmf; low, urgency=high, urgency=low\n\n  * x\n\n -- A <a@b>  Mon, 23 Nov 2026 10:00:00 +0000\n"
            ),
            ["1: bad key-value after ';': 'low'", "1: repeated key-value urgency"]
        );
        assert_eq!(
            warnings(&entry("foo (1.0_1) wmf;", TRAILER_LINE)),
            ["1: version '1.0_1' is invalid: invalid character in version number"]
        );
    }

    #[test]
    fn trailer_problems_are_warnings() {
        let header = "foo (1.0) wmf; urgency=medium";
        let warned = |trailer: &str| {
            let all = warnings(&entry(header, trailer));
            assert_eq!(all.len(), 1, "{trailer}: {all:?}");
            all[0].clone()
        };
        let unindented = warnings(&entry(header, "--  Jane <j@example.org>  Sun, 16 Aug 2026 06:00:05 +0000"));
        assert!(unindented[0].starts_with("5: badly formatted heading line"), "{unindented:?}");
        assert!(warned(" -- Jane  Sun, 16 Aug 2026 06:00:05 +0000").contains("no `<email>`"));
        assert!(warned(" -- <j@example.org>  Sun, 16 Aug 2026 06:00:05 +0000").contains("no maintainer"));
        assert!(warned(" -- Jane <j@example.org> Sun, 16 Aug 2026 06:00:05 +0000").contains("two spaces"));
        // The 2023 production-images date that made the whole tree unusable before.
        assert!(warned(" -- Luca <l@example.org>  Thu Mar 9 11:41:33 2023 +0100").contains("non-conformant date"));
        for date in [
            "yesterday",
            "Sun, 16 Aug 2026",
            "Sun 16 Aug 2026 06:00:05 +0000",
            "Sun, 16 August 2026 06:00:05 +0000",
            "Sun, 30 Feb 2026 06:00:05 +0000",
            "Sun, 16 Aug 2026 24:00:05 +0000",
            "Sun, 16 Aug 26 06:00:05 +0000",
            "Sun, 16 Aug 2026 06:00:05 UTC",
            "Sun, 16 Aug 2026 06:00:05 +0000 extra",
        ] {
            let message = warned(&format!(" -- Jane <j@example.org>  {date}"));
            assert!(message.starts_with(&format!("5: cannot parse non-conformant date '{date}'")), "{message}");
        }
    }

    #[test]
    fn invalid_utf8_is_a_warning() {
        let mut text = b"foo (1.0) wmf; urgency=medium\n\n  * Caf".to_vec();
        text.extend_from_slice(b"\xe9.\n\n");
        text.extend_from_slice(TRAILER_LINE.as_bytes());
        let top = parse(&text).unwrap();
        assert_eq!(top.warnings, [(3, "invalid UTF-8 (read as replacement characters)".to_owned())]);
    }

    #[test]
    fn fifos_and_devices_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("changelog");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_top_entry(&link).unwrap_err();
        assert_eq!(err.message, "cannot read: not a regular file (it is a character device)");
        let big = dir.path().join("big");
        fs::write(&big, format!("foo (1.0) wmf; urgency=medium\n\n{}", "  * x\n".repeat(1 << 20))).unwrap();
        assert!(read_top_entry(&big).unwrap_err().message.contains("larger than the limit of 4 MiB"));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &[
            "foo (1.0-1) wikimedia; urgency=medium",
            "foo-bar (1:2.0~rc1+b1-1.1) wikimedia bookworm; urgency=low, binary-only=yes",
            " -- Jane Doe <jane@example.org>  Sun, 16 Aug 2026 06:00:05 +0000",
            " -- Luca <l@example.org>  Thu Mar 9 11:41:33 2023 +0100",
            "  * Change.",
            " --",
            "(",
            ")",
            ";",
            "<",
            ">",
            "urgency=",
            "\n\n",
        ];

        proptest! {
            #[test]
            fn never_panics_and_names_what_it_reads(bytes in crate::fuzz::bytes(TOKENS)) {
                if let Ok(top) = top_entry_from(Path::new("changelog"), bytes.as_slice()) {
                    prop_assert!(!top.package.is_empty() && !top.version.as_str().is_empty());
                    prop_assert!(top.line >= 1);
                    prop_assert!(top.warnings.iter().all(|(line, _)| *line >= 1));
                }
            }
        }
    }
}
