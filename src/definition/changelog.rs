//! The top entry of a Debian `changelog`: the image's name and version.
//!
//! Only the first entry matters (never the highest version), so the file is streamed and reading stops at that
//! entry's trailer; real changelogs hold up to a couple of hundred entries. The entry is validated strictly:
//!
//! ```text
//! package (version) distribution[ distribution...]; urgency=value[, key=value...]
//!
//!   * change lines, indented
//!
//!  -- Maintainer Name <email>  Sun, 16 Aug 2026 06:00:05 +0000
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The first (topmost) entry of a changelog, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    /// Package name: the image's short name.
    pub package: String,
    /// Version string exactly as written: the image's tag.
    pub version: String,
    /// 1-based line of the entry's header.
    pub line: usize,
    /// Distributions named in the header (at least one), e.g. `wikimedia`.
    pub distributions: Vec<String>,
    /// The header's `urgency=` value, e.g. `medium`.
    pub urgency: String,
    /// Trailer maintainer name.
    pub maintainer: String,
    /// Trailer email address, without the angle brackets.
    pub email: String,
    /// Trailer date exactly as written (RFC 2822).
    pub date: String,
}

/// A changelog that cannot be read or whose top entry is malformed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ChangelogError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// What the trailer line looks like, for messages.
const TRAILER: &str = "` -- Name <email>  date`";

/// Reads only as much of `path` as the top entry needs.
pub fn read_top_entry(path: &Path) -> Result<TopEntry, ChangelogError> {
    let file = File::open(path).map_err(|e| ChangelogError {
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
        Problem::Io(e) => error(None, format!("cannot read: {e}")),
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

/// Hands out lines one at a time, without the line ending (`\n` or `\r\n`), with their 1-based numbers.
struct Lines<R> {
    reader: R,
    number: usize,
    buffer: Vec<u8>,
    /// Whether the last line read ended with a newline, for the line number of "end of file".
    newline: bool,
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
        match std::str::from_utf8(line) {
            Ok(line) => Ok(Some((self.number, line.to_owned()))),
            Err(_) => Err(Problem::At(self.number, "invalid UTF-8".into())),
        }
    }

    /// The line where something missing at the end of the file was expected.
    fn end(&self) -> usize {
        if self.newline || self.number == 0 { self.number + 1 } else { self.number }
    }
}

fn parse_top_entry(reader: impl BufRead) -> Result<TopEntry, Problem> {
    let mut lines = Lines { reader, number: 0, buffer: Vec::new(), newline: false };
    let at = |line: usize| move |message: String| Problem::At(line, message);

    let (line, text) = loop {
        match lines.next()? {
            Some((_, text)) if text.trim().is_empty() => {}
            Some(found) => break found,
            None => return Err(Problem::At(lines.end(), "empty changelog".into())),
        }
    };
    let header = parse_header(&text).map_err(at(line))?;

    // Header, blank line(s), indented change lines (blank lines allowed between them), blank line(s), trailer.
    let mut previous_blank = false;
    let mut changes = 0;
    loop {
        let Some((number, text)) = lines.next()? else {
            return Err(Problem::At(lines.end(), format!("top entry has no trailer line {TRAILER}")));
        };
        let blank = text.trim().is_empty();
        if number == line + 1 && !blank {
            return Err(Problem::At(number, "expected a blank line after the header".into()));
        }
        if blank {
            previous_blank = true;
            continue;
        }
        if text.trim_start().starts_with("--") {
            if changes == 0 {
                return Err(Problem::At(number, "top entry has no change lines".into()));
            }
            if !previous_blank {
                return Err(Problem::At(number, "expected a blank line before the trailer".into()));
            }
            let trailer = parse_trailer(&text).map_err(at(number))?;
            return Ok(TopEntry {
                package: header.package,
                version: header.version,
                line,
                distributions: header.distributions,
                urgency: header.urgency,
                maintainer: trailer.maintainer,
                email: trailer.email,
                date: trailer.date,
            });
        }
        if !text.starts_with([' ', '\t']) {
            let message = if parse_header(&text).is_ok() {
                format!("top entry has no trailer line {TRAILER} before the next entry")
            } else {
                format!("expected an indented change line or the trailer line {TRAILER}")
            };
            return Err(Problem::At(number, message));
        }
        changes += 1;
        previous_blank = false;
    }
}

struct Header {
    package: String,
    version: String,
    distributions: Vec<String>,
    urgency: String,
}

fn parse_header(text: &str) -> Result<Header, String> {
    let expected = || "expected a header `package (version) distribution; urgency=...`".to_owned();
    let (package, rest) = text.split_once(" (").ok_or_else(expected)?;
    let (version, rest) = rest.split_once(')').ok_or_else(expected)?;
    let (distributions, keywords) = rest.split_once(';').ok_or_else(expected)?;
    if package.is_empty() || package.contains(char::is_whitespace) || !distributions.starts_with(' ') {
        return Err(expected());
    }
    check_package(package)?;
    check_version(version).map_err(|why| format!("invalid version `{version}`: {why}"))?;

    let distributions: Vec<String> = distributions.split_whitespace().map(str::to_owned).collect();
    if distributions.is_empty() {
        return Err("the header names no distribution".into());
    }
    if let Some(d) = distributions.iter().find(|d| !d.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))) {
        return Err(format!("invalid distribution `{d}`"));
    }

    let mut urgency = None;
    for keyword in keywords.split(',') {
        let Some((key, value)) = keyword.trim().split_once('=') else {
            return Err(format!("expected `key=value` after `;`, found `{}`", keyword.trim()));
        };
        if key.is_empty() || value.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("expected `key=value` after `;`, found `{}`", keyword.trim()));
        }
        if key.eq_ignore_ascii_case("urgency") {
            urgency = Some(value.to_owned());
        }
    }
    let urgency = urgency.ok_or("the header has no `urgency=...`")?;
    Ok(Header { package: package.to_owned(), version: version.to_owned(), distributions, urgency })
}

/// Debian source package names, `[a-z0-9][a-z0-9+.-]*`: one character is allowed, as docker-pkg's parser
/// (python-debian) allows it and Docker accepts one-letter image names.
fn check_package(package: &str) -> Result<(), String> {
    let rule = "names use lowercase letters, digits, `+`, `-` and `.`, and start with a letter or digit";
    let valid = package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c));
    if valid {
        Ok(())
    } else if package.contains(|c: char| c.is_ascii_uppercase()) {
        Err(format!("invalid package name `{package}`: uppercase letters are not allowed ({rule})"))
    } else {
        Err(format!("invalid package name `{package}`: {rule}"))
    }
}

/// Debian version syntax: `[epoch:]upstream[-revision]`.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("the version is empty".into());
    }
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (Some(epoch), rest),
        None => (None, version),
    };
    if let Some(epoch) = epoch
        && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("the epoch `{epoch}` must be a number"));
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    if let Some(revision) = revision {
        if revision.is_empty() {
            return Err("the revision after the last `-` is empty".into());
        }
        if let Some(c) = revision.chars().find(|&c| !(c.is_ascii_alphanumeric() || "+.~".contains(c))) {
            return Err(format!("`{c}` is not allowed in the revision (letters, digits, `+`, `.`, `~`)"));
        }
    }
    // Policy wants a leading digit, but dpkg only warns and real images use `v20220915-3` or `gfx90a...-1`.
    if !upstream.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("the upstream version must start with a letter or digit".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-".contains(c) || (c == ':' && epoch.is_some());
    match upstream.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(format!("`{c}` is not allowed in the upstream version (letters, digits, `.`, `+`, `~`, `-`)")),
        None => Ok(()),
    }
}

struct Trailer {
    maintainer: String,
    email: String,
    date: String,
}

fn parse_trailer(text: &str) -> Result<Trailer, String> {
    let Some(rest) = text.strip_prefix(" -- ") else {
        return Err(format!("the trailer must start with exactly one space and `-- `: {TRAILER}"));
    };
    // `>  ` ends the address; taking the first one copes with `Name <Name <mail>>` (seen in real changelogs).
    let Some(end) = rest.find(">  ") else {
        return Err(if rest.contains('<') && rest.contains('>') {
            format!("expected two spaces between the `>` and the date: {TRAILER}")
        } else {
            format!("the trailer has no `<email>`: {TRAILER}")
        });
    };
    let (who, date) = (&rest[..=end], rest[end + 3..].trim());
    let maintainer = who.split('<').next().unwrap_or_default().trim();
    if maintainer.is_empty() {
        return Err(format!("the trailer has no maintainer name: {TRAILER}"));
    }
    let email = who.rsplit('<').next().unwrap_or_default().trim_end_matches('>');
    if email.is_empty() || email.contains(char::is_whitespace) || !who.contains('<') {
        return Err(format!("the trailer has no `<email>`: {TRAILER}"));
    }
    check_date(date).map_err(|why| format!("invalid date `{date}`: {why}"))?;
    Ok(Trailer { maintainer: maintainer.to_owned(), email: email.to_owned(), date: date.to_owned() })
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("changelog");
        fs::write(&path, text).unwrap();
        read_top_entry(&path).map_err(|e| (e.line, e.message))
    }

    fn entry(header: &str, trailer: &str) -> String {
        format!("{header}\n\n  * Change.\n\n{trailer}\n")
    }

    fn error(text: &str) -> (Option<usize>, String) {
        parse(text.as_bytes()).unwrap_err()
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
            TopEntry {
                package: "foo-bar".into(),
                version: "1.0-2".into(),
                line: 1,
                distributions: vec!["wikimedia".into(), "bookworm".into()],
                urgency: "medium".into(),
                maintainer: "Jane Doe".into(),
                email: "jane@example.org".into(),
                date: "Sun, 16 Aug 2026 06:00:05 +0000".into(),
            }
        );
    }

    #[test]
    fn first_entry_wins_over_higher_versions() {
        let text = entry("foo (1.0-1) wmf; urgency=medium", TRAILER_LINE)
            + "\n"
            + &entry("foo (9.0-1) wmf; urgency=medium", TRAILER_LINE);
        assert_eq!(parse(text.as_bytes()).unwrap().version, "1.0-1");
    }

    #[test]
    fn stops_at_the_trailer() {
        // Whatever follows the top entry is not read, even if it is not a changelog at all.
        let text = entry("foo (1.0) wmf; urgency=medium", TRAILER_LINE);
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"garbage \xff\n");
        assert_eq!(parse(&bytes).unwrap().version, "1.0");
    }

    #[test]
    fn tolerates_what_real_changelogs_have() {
        let crlf = entry("foo (1:2.0~rc1+b1-1.1) wmf; urgency=medium", TRAILER_LINE).replace('\n', "\r\n");
        assert_eq!(parse(crlf.as_bytes()).unwrap().version, "1:2.0~rc1+b1-1.1");
        let nested = " -- Jane Doe <Jane Doe <jane@example.org>>  Fri, 13 Oct 2071 18:49:14 +0200";
        let top = parse(entry("foo (0.0.1~alpha1) wmf; urgency=medium", nested).trim_end().as_bytes()).unwrap();
        assert_eq!((top.maintainer.as_str(), top.email.as_str()), ("Jane Doe", "jane@example.org"));
        assert_eq!(top.date, "Fri, 13 Oct 2071 18:49:14 +0200");
        let leading_blank = format!("\n{}", entry("foo (1.0) wmf; urgency=medium", TRAILER_LINE));
        assert_eq!(parse(leading_blank.as_bytes()).unwrap().line, 2);
        let no_weekday = " -- Jane <j@example.org>  16 Aug 2026 06:00 -0130";
        assert!(parse(entry("foo (1.0) wmf; urgency=medium", no_weekday).as_bytes()).is_ok());
    }

    #[test]
    fn empty_and_garbage() {
        assert_eq!(error(""), (Some(1), "empty changelog".into()));
        assert_eq!(error("\n  \n"), (Some(3), "empty changelog".into()));
        let (line, message) = error("this is not a changelog\n");
        assert_eq!(line, Some(1));
        assert!(message.starts_with("expected a header"), "{message}");
        assert!(error("  foo (1.0) wmf; urgency=medium\n").1.starts_with("expected a header"));
        assert!(error("foo (1.0) wmf\n").1.starts_with("expected a header"));
        assert!(error("foo (1.0) ; urgency=medium\n").1.contains("no distribution"));
        assert!(error("foo (1.0) wmf; low\n").1.contains("key=value"));
        assert!(error("foo (1.0) wmf; binary-only=yes\n").1.contains("no `urgency"));
    }

    #[test]
    fn missing_trailer() {
        let truncated = "foo (1.0) wmf; urgency=medium\n\n  * Change.\n";
        assert_eq!(error(truncated), (Some(4), format!("top entry has no trailer line {TRAILER}")));
        assert_eq!(error(truncated.trim_end()).0, Some(3));
        let next_entry = format!(
            "foo (1.0) wmf; urgency=medium\n\n  * One.\n\n{}",
            entry("foo (0.9) wmf; urgency=low", TRAILER_LINE)
        );
        let (line, message) = error(&next_entry);
        assert_eq!(line, Some(5));
        assert!(message.starts_with("top entry has no trailer line"), "{message}");
        let (line, message) = error("foo (1.0) wmf; urgency=medium\n\n  * One.\nnot indented\n");
        assert_eq!(line, Some(4));
        assert!(message.starts_with("expected an indented change line"), "{message}");
    }

    #[test]
    fn entry_layout() {
        let header = "foo (1.0) wmf; urgency=medium";
        assert_eq!(error(&format!("{header}\n  * x\n\n{TRAILER_LINE}\n")).0, Some(2));
        assert_eq!(error(&format!("{header}\n\n{TRAILER_LINE}\n")).1, "top entry has no change lines");
        assert_eq!(
            error(&format!("{header}\n\n  * x\n{TRAILER_LINE}\n")).1,
            "expected a blank line before the trailer"
        );
    }

    #[test]
    fn bad_trailers() {
        let header = "foo (1.0) wmf; urgency=medium";
        let bad = |trailer: &str| {
            let (line, message) = error(&entry(header, trailer));
            assert_eq!(line, Some(5), "{trailer}");
            message
        };
        assert!(bad("--  Jane <j@example.org>  Sun, 16 Aug 2026 06:00:05 +0000").contains("exactly one space"));
        assert!(bad("  -- Jane <j@example.org>  Sun, 16 Aug 2026 06:00:05 +0000").contains("exactly one space"));
        assert!(bad(" -- Jane  Sun, 16 Aug 2026 06:00:05 +0000").contains("no `<email>`"));
        assert!(bad(" -- Jane <>  Sun, 16 Aug 2026 06:00:05 +0000").contains("no `<email>`"));
        assert!(bad(" -- <j@example.org>  Sun, 16 Aug 2026 06:00:05 +0000").contains("no maintainer"));
        assert!(bad(" -- Jane <j@example.org> Sun, 16 Aug 2026 06:00:05 +0000").contains("two spaces"));
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
            let message = bad(&format!(" -- Jane <j@example.org>  {date}"));
            assert!(message.starts_with(&format!("invalid date `{date}`")), "{message}");
        }
    }

    #[test]
    fn invalid_utf8() {
        let mut text = b"foo (1.0) wmf; urgency=medium\n\n  * Caf".to_vec();
        text.extend_from_slice(b"\xe9.\n\n");
        text.extend_from_slice(TRAILER_LINE.as_bytes());
        assert_eq!(parse(&text).unwrap_err(), (Some(3), "invalid UTF-8".into()));
    }

    #[test]
    fn invalid_names_and_versions() {
        let check = |header: &str| error(&entry(header, TRAILER_LINE));
        let (line, message) = check("Foo (1.0) wmf; urgency=medium");
        assert_eq!(line, Some(1));
        assert!(message.contains("invalid package name `Foo`: uppercase"), "{message}");
        assert!(check("f_x (1.0) wmf; urgency=medium").1.contains("invalid package name"));
        assert!(check("-foo (1.0) wmf; urgency=medium").1.contains("invalid package name"));
        for (version, why) in [
            ("", "empty"),
            ("v20220915-3", "ok"),
            (".1.0", "start with a letter or digit"),
            ("-1", "start with a letter or digit"),
            ("x:1.0", "epoch"),
            ("1.0-", "revision"),
            ("1.0-a_b", "`_` is not allowed in the revision"),
            ("1:0", "ok"),
            ("1.0:2", "epoch `1.0`"),
            ("1:1.0:2-1", "ok"),
            ("1.0-1:2", "epoch"),
            ("1.0 beta", "` ` is not allowed"),
            ("1.0_1", "`_` is not allowed in the upstream"),
        ] {
            let result = parse(entry(&format!("foo ({version}) wmf; urgency=medium"), TRAILER_LINE).as_bytes());
            match result {
                Ok(_) => assert_eq!(why, "ok", "{version}"),
                Err((_, message)) => {
                    assert!(message.starts_with(&format!("invalid version `{version}`")), "{message}");
                    assert!(message.contains(why), "{version}: {message}");
                }
            }
        }
    }

    #[test]
    fn unreadable() {
        let err = read_top_entry(Path::new("/nonexistent/changelog")).unwrap_err();
        assert_eq!(err.line, None);
        assert!(err.message.starts_with("cannot read: "), "{}", err.message);
    }

    /// Every changelog of the shared corpora yields docker-pkg's own name and tag (skipped without the corpora).
    #[test]
    fn corpus_matches_golden_scans() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
        let Ok(scans) = fs::read_dir(shared.join("golden")) else { return };
        let mut checked = 0;
        for corpus in scans.flatten() {
            let golden = corpus.path();
            let corpus_root = shared.join("corpora").join(corpus.file_name());
            let mut roots = vec![(golden.clone(), corpus_root.clone())];
            for sub in fs::read_dir(&golden).unwrap().flatten() {
                roots.push((sub.path(), corpus_root.join(sub.file_name())));
            }
            for (golden, root) in roots {
                let Ok(scan) = fs::read_to_string(golden.join("scan.json")) else { continue };
                let scan: serde_json::Value = serde_json::from_str(&scan).unwrap();
                for image in scan["images"].as_array().unwrap() {
                    let path = root.join(image["path"].as_str().unwrap()).join("changelog");
                    let top = read_top_entry(&path).unwrap_or_else(|e| panic!("{e} (line {:?})", e.line));
                    assert_eq!(
                        (top.package.as_str(), top.version.as_str()),
                        (image["name"].as_str().unwrap(), image["tag"].as_str().unwrap())
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked == 0 || checked >= 140, "only {checked} changelogs checked");
    }
}
