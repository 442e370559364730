//! Moby's own cases first: the tables of moby/patternmatcher's `patternmatcher_test.go` and `ignorefile_test.go`,
//! as data, each run the ways moby runs it. Then imgraph's: the walk, the descent, and what moby's tables leave
//! out, each checked against moby built with Go.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use proptest::prelude::*;

use super::pattern::{MatchType, compile, is_valid_go_glob};
use super::*;

/// A matcher from patterns as moby's `New` receives them, without reading a file.
fn new(patterns: &[&str]) -> Result<Matcher, String> {
    Matcher::from_patterns(patterns.iter().enumerate().map(|(i, p)| (i + 1, *p)))
}

fn excluded(text: &str, path: &str) -> bool {
    Matcher::parse(text).expect("valid patterns").excludes(Path::new(path))
}

/// Moby's `MatchesOrParentMatches`: the last pattern that matches `file` or one of its parent directories decides.
fn or_parent_matches(m: &Matcher, file: &str) -> bool {
    let dirs = parent_dirs(file.as_bytes());
    let mut matched = false;
    for p in &m.patterns {
        if p.exception() != matched {
            continue;
        }
        if p.matches(file.as_bytes()) || dirs.iter().any(|dir| p.matches(dir)) {
            matched = !p.exception();
        }
    }
    matched
}

/// Moby's `MatchesUsingParentResults`, fed with its parent directories' results as moby's test does.
fn using_parent_results(m: &Matcher, file: &str) -> bool {
    let mut parent: Option<Vec<bool>> = None;
    for dir in parent_dirs(file.as_bytes()) {
        parent = Some(m.matches_using_parent_results(&dir, parent.as_deref()).1);
    }
    m.matches_using_parent_results(file.as_bytes(), parent.as_deref()).0
}

/// Moby's `MatchesUsingParentResults` without its parents' results: every parent directory is tried.
fn no_context(m: &Matcher, file: &str) -> bool {
    m.matches_using_parent_results(file.as_bytes(), None).0
}

/// Moby's deprecated `MatchesUsingParentResult`, which passes down only whether the parent matched.
fn using_parent_result(m: &Matcher, file: &str) -> bool {
    let step = |path: &[u8], parent: bool| {
        m.patterns.iter().fold(parent, |matched, p| {
            if p.exception() == matched && p.matches(path) { !p.exception() } else { matched }
        })
    };
    let parent = parent_dirs(file.as_bytes()).iter().fold(false, |parent, dir| step(dir, parent));
    step(file.as_bytes(), parent)
}

/// Moby's deprecated `Matches`, which its older tests call: besides the path, a pattern is tried on the one parent
/// directory as deep as itself; `.` is never matched.
fn deprecated_matches(patterns: &[&str], file: &str) -> Result<bool, String> {
    let m = new(patterns)?;
    let file = clean(file);
    if file == "." {
        return Ok(false);
    }
    let dirs = parent_dirs(file.as_bytes());
    let mut matched = false;
    for p in &m.patterns {
        if p.exception() != matched {
            continue;
        }
        let depth = p.text().split('/').count();
        if p.matches(file.as_bytes()) || dirs.get(depth - 1).is_some_and(|dir| p.matches(dir)) {
            matched = !p.exception();
        }
    }
    Ok(matched)
}

// ---- moby/patternmatcher: patternmatcher_test.go ----

/// `TestWildcardMatches` to `TestMatchesWithMalformedPatterns`, through the deprecated `Matches` as there, and through
/// the walk. `None`: an error.
#[test]
fn moby_small_tests() {
    let cases: &[(&str, &[&str], Option<bool>)] = &[
        ("fileutils.go", &["*"], Some(true)),
        ("fileutils.go", &["*.go"], Some(true)),
        ("fileutils.go", &["!fileutils.go", "*.go"], Some(true)),
        ("docs/README.md", &["docs", "!docs/README.md"], Some(false)),
        ("docs/README.md", &["docs/", "!docs/README.md"], Some(false)),
        ("docs/README.md", &["docs/*", "!docs/README.md"], Some(false)),
        ("fileutils.go", &["*.go", "!fileutils.go"], Some(false)),
        (".", &["*.go"], Some(false)),
        ("fileutils.go", &["!"], None),
        ("/any/path/there", &[], Some(false)),
        ("/any/path/there", &["["], None),
    ];
    for &(file, patterns, expected) in cases {
        assert_eq!(deprecated_matches(patterns, file).ok(), expected, "{patterns:?} on {file:?}");
        let walked = new(patterns).ok().map(|m| m.excludes(Path::new(file)));
        assert_eq!(walked, expected, "{patterns:?} on {file:?}, walked");
    }
}

/// `TestMatches`: one pattern and a path. The Windows-only variant of the table drops nothing here; its Unix-only
/// case (`a\*b`) is the last one.
const MOBY_MATCHES: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "/", true),
    ("**/", "/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true),
    ("a\\*b", "a*b", true),
];

/// `TestMatches`' cases with several patterns.
const MOBY_MULTI_MATCHES: &[(&[&str], &str, bool)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (&["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true),
    (
        &["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false),
];

/// Every way moby runs `TestMatches`, plus the walk for the paths a walk can meet (relative ones).
#[test]
fn moby_matches() {
    let single = MOBY_MATCHES.iter().map(|&(pattern, text, pass)| (vec![pattern], text, pass, true));
    let multi = MOBY_MULTI_MATCHES.iter().map(|&(patterns, text, pass)| (patterns.to_vec(), text, pass, false));
    for (patterns, text, pass, is_single) in single.chain(multi) {
        let m = new(&patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"));
        let case = format!("{patterns:?} on {text:?}");
        assert_eq!(or_parent_matches(&m, text), pass, "MatchesOrParentMatches {case}");
        assert_eq!(using_parent_results(&m, text), pass, "MatchesUsingParentResults {case}");
        assert_eq!(no_context(&m, text), pass, "MatchesUsingParentResultsNoContext {case}");
        if is_single {
            assert_eq!(using_parent_result(&m, text), pass, "MatchesUsingParentResult {case}");
        }
        if !text.starts_with('/') {
            assert_eq!(m.excludes(Path::new(text)), pass, "walked {case}");
        }
    }
}

/// `TestCleanPatterns` to `TestCleanPatternsErrorSingleException`.
#[test]
fn moby_clean_patterns() {
    let count = |patterns: &[&str]| new(patterns).map(|m| m.patterns.len());
    let exceptions = |patterns: &[&str]| new(patterns).map(|m| m.patterns.iter().any(|p| p.exception()));
    assert_eq!(count(&["docs", "config"]), Ok(2));
    assert_eq!(count(&["docs", "config", ""]), Ok(2));
    assert_eq!(exceptions(&["docs", "!docs/README.md"]), Ok(true));
    assert_eq!(exceptions(&["docs", "  !docs/README.md"]), Ok(true));
    assert_eq!(exceptions(&["docs", "!docs/README.md  "]), Ok(true));
    assert!(new(&["!"]).is_err());
}

/// `TestMatch`: Go's own `filepath.Match` table, through the deprecated `Matches`. `Err`: `ErrBadPattern`. On
/// Windows moby skips the cases with a `\`; none is skipped here.
const MOBY_MATCH: &[(&str, &str, Result<bool, ()>)] = &[
    ("abc", "abc", Ok(true)),
    ("*", "abc", Ok(true)),
    ("*c", "abc", Ok(true)),
    ("a*", "a", Ok(true)),
    ("a*", "abc", Ok(true)),
    ("a*", "ab/c", Ok(true)),
    ("a*/b", "abc/b", Ok(true)),
    ("a*/b", "a/c/b", Ok(false)),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
    ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
    ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
    ("ab[c]", "abc", Ok(true)),
    ("ab[b-d]", "abc", Ok(true)),
    ("ab[e-g]", "abc", Ok(false)),
    ("ab[^c]", "abc", Ok(false)),
    ("ab[^b-d]", "abc", Ok(false)),
    ("ab[^e-g]", "abc", Ok(true)),
    ("a\\*b", "a*b", Ok(true)),
    ("a\\*b", "ab", Ok(false)),
    ("a?b", "a☺b", Ok(true)),
    ("a[^a]b", "a☺b", Ok(true)),
    ("a???b", "a☺b", Ok(false)),
    ("a[^a][^a][^a]b", "a☺b", Ok(false)),
    ("[a-ζ]*", "α", Ok(true)),
    ("*[a-ζ]", "A", Ok(false)),
    ("a?b", "a/b", Ok(false)),
    ("a*b", "a/b", Ok(false)),
    ("[\\]a]", "]", Ok(true)),
    ("[\\-]", "-", Ok(true)),
    ("[x\\-]", "x", Ok(true)),
    ("[x\\-]", "-", Ok(true)),
    ("[x\\-]", "z", Ok(false)),
    ("[\\-x]", "x", Ok(true)),
    ("[\\-x]", "-", Ok(true)),
    ("[\\-x]", "a", Ok(false)),
    ("[]a]", "]", Err(())),
    ("[-]", "-", Err(())),
    ("[x-]", "x", Err(())),
    ("[x-]", "-", Err(())),
    ("[x-]", "z", Err(())),
    ("[-x]", "x", Err(())),
    ("[-x]", "-", Err(())),
    ("[-x]", "a", Err(())),
    ("\\", "a", Err(())),
    ("[a-b-c]", "a", Err(())),
    ("[", "a", Err(())),
    ("[^", "a", Err(())),
    ("[^bc", "a", Err(())),
    ("a[", "a", Err(())),
    ("a[", "ab", Err(())),
    ("*x", "xxx", Ok(true)),
];

#[test]
fn moby_match() {
    for &(pattern, name, expected) in MOBY_MATCH {
        let got = deprecated_matches(&[pattern], name).map_err(|_| ());
        assert_eq!(got, expected, "{pattern:?} on {name:?}");
        assert_eq!(is_valid_go_glob(pattern), expected.is_ok(), "{pattern:?}: syntax");
    }
}

/// `TestCompile`: the match type and the Go regular expression of each pattern. Its backslash half is for Windows'
/// separator and is skipped.
const MOBY_COMPILE: &[(&str, MatchType, &str)] = &[
    ("*", MatchType::Regex, r"^[^/]*$"),
    ("file*", MatchType::Regex, r"^file[^/]*$"),
    ("*file", MatchType::Regex, r"^[^/]*file$"),
    ("a*/b", MatchType::Regex, r"^a[^/]*/b$"),
    ("**", MatchType::Suffix, ""),
    ("**/**", MatchType::Regex, r"^(.*/)?.*$"),
    ("dir/**", MatchType::Prefix, ""),
    ("**/dir", MatchType::Suffix, ""),
    ("**/dir2/*", MatchType::Regex, r"^(.*/)?dir2/[^/]*$"),
    ("**/dir2/**", MatchType::Regex, r"^(.*/)?dir2/.*$"),
    ("**file", MatchType::Suffix, ""),
    ("**/file*txt", MatchType::Regex, r"^(.*/)?file[^/]*txt$"),
    ("**/**/*.txt", MatchType::Regex, r"^(.*/)?(.*/)?[^/]*\.txt$"),
    ("a[b-d]e", MatchType::Regex, r"^a[b-d]e$"),
    (".*", MatchType::Regex, r"^\.[^/]*$"),
    ("abc.def", MatchType::Exact, ""),
    ("abc?def", MatchType::Regex, r"^abc[^/]def$"),
    ("**/foo/bar", MatchType::Suffix, ""),
    ("a(b)c/def", MatchType::Exact, ""),
    ("a.|)$(}+{bc", MatchType::Exact, ""),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", MatchType::Exact, ""),
];

#[test]
fn moby_compile() {
    for &(pattern, match_type, expression) in MOBY_COMPILE {
        let (kind, compiled) = compile(&clean(pattern));
        assert_eq!(kind, match_type, "{pattern:?}");
        if kind == MatchType::Regex {
            assert_eq!(compiled, expression, "{pattern:?}");
            assert!(goregex::to_regex(&compiled).is_ok(), "{pattern:?}");
        }
    }
}

/// `TestMatchesOrParentMatchesMalformedPatternDoesNotPanicOnRepeatedCall`: `[Local-Only]/` passes `filepath.Match`
/// but its range `l-O` is reversed for Go's regexp. Moby fails on every match; it is refused here at once.
#[test]
fn moby_malformed_pattern_found_at_compile_time() {
    let error = new(&["[Local-Only]/"]).expect_err("a reversed range");
    assert!(error.contains("[Local-Only]"), "{error}");
}

// ---- moby/patternmatcher: ignorefile/ignorefile_test.go ----

/// `TestReadAll`.
#[test]
fn moby_read_all() {
    assert_eq!(read_patterns(""), Ok(Vec::new()));
    let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    let read: Vec<String> = read_patterns(content).expect("readable").into_iter().map(|(_, p)| p).collect();
    let expected = ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"];
    assert_eq!(read, expected);
    // The lone `!` lines are then refused by `New`.
    let error = Matcher::parse(content).expect_err("a lone `!`");
    assert!(error.starts_with("line 8:"), "{error}");
}

// ---- imgraph ----

#[test]
fn anchored_at_the_root() {
    assert!(excluded("foo", "foo"));
    assert!(!excluded("foo", "a/foo"));
    assert!(excluded("**/foo", "a/foo"));
    assert!(excluded("**/foo", "foo"));
    assert!(excluded("/foo", "foo"));
    assert!(excluded("./foo/", "foo"));
    assert!(excluded("a/../foo", "foo"));
}

#[test]
fn star_and_question_mark_stay_in_one_component() {
    assert!(excluded("*.txt", "a.txt"));
    assert!(!excluded("*.txt", "d/a.txt"));
    assert!(excluded("d/?.txt", "d/a.txt"));
    assert!(!excluded("a?b", "a/b"));
    assert!(!excluded("a*b", "a/b"));
    assert!(excluded("**/*.tmp", "x/y/z.tmp"));
    assert!(excluded("**/*.tmp", "z.tmp"));
    assert!(excluded("a/**/b", "a/b"));
    assert!(excluded("a/**/b", "a/x/y/b"));
}

/// The known bug: a leading `**` not followed by `/` is a suffix test, so it matches at any depth.
#[test]
fn leading_double_star_matches_at_any_depth() {
    for path in ["a.key", "d/a.key", "d/e/a.key", "d/.key"] {
        assert!(excluded("**.key", path), "{path}");
    }
    assert!(!excluded("**.key", "a.keys"));
    assert!(excluded("**foo", "x/barfoo"));
}

#[test]
fn parents_match_and_last_line_wins() {
    assert!(excluded("secret/", "secret/deep/key"));
    assert!(excluded("secret", "secret"));
    let rules = "*.txt\n!keep.txt";
    assert!(excluded(rules, "drop.txt"));
    assert!(!excluded(rules, "keep.txt"));
    assert!(excluded("!keep.txt\n*.txt", "keep.txt"));
    let rules = "dir\n!dir/keep";
    assert!(excluded(rules, "dir"));
    assert!(excluded(rules, "dir/other"));
    assert!(!excluded(rules, "dir/keep"));
}

/// Docker's walkers pass down only the patterns they tried: `a` is not tried again on `a` once it is excluded, so
/// it does not hold below `a/b`, which `!a/b` re-included.
#[test]
fn the_walk_passes_down_only_the_patterns_it_tried() {
    let rules = "a\n!a/b\na";
    assert!(excluded(rules, "a"));
    assert!(excluded(rules, "a/c"));
    assert!(!excluded(rules, "a/b"));
    assert!(!excluded(rules, "a/b/c"));
    // Where "the last matching line wins", as moby's `MatchesOrParentMatches` has it, `a/b/c` would be left out.
    assert!(or_parent_matches(&Matcher::parse(rules).expect("valid"), "a/b/c"));
}

#[test]
fn comments_blank_lines_and_trimming() {
    let rules = "\u{feff}# a comment\n\n   foo   \n\t!  foo/bar \n";
    assert!(excluded(rules, "foo/baz"));
    assert!(!excluded(rules, "foo/bar"));
    assert!(!excluded(rules, "# a comment"));
    // Only a `#` in the first column starts a comment; Unicode spaces are trimmed too, CRLF ends lines.
    assert!(excluded(" #x", "#x"));
    assert!(excluded("\u{a0}a\u{3000}\r\nb\r\n", "a"));
    assert!(excluded("\u{a0}a\u{3000}\r\nb\r\n", "b"));
    // A BOM is dropped from the first line only; later, Go's scanner skips it when the pattern becomes a regexp.
    assert!(excluded("x\n\u{feff}*.go", "a.go"));
    assert!(!excluded("x\n\u{feff}a.go", "a.go"));
}

/// Docker's reader (a Go `bufio.Scanner`) fails on a line of 64 KiB or more, `\r` included.
#[test]
fn lines_of_64_kib_are_refused() {
    let long = |n: usize, end: &str| format!("x\n{}{end}", "a".repeat(n));
    assert!(Matcher::parse(&long(65_535, "")).is_ok());
    assert!(Matcher::parse(&long(65_535, "\n")).is_ok());
    assert!(Matcher::parse(&long(65_534, "\r\n")).is_ok());
    assert!(Matcher::parse(&long(65_535, "\r\n")).is_err());
    let error = Matcher::parse(&long(65_536, "")).expect_err("too long");
    assert!(error.starts_with("line 2 "), "{error}");
}

/// Brackets and escapes are read by Go's regexp, as moby hands them over.
#[test]
fn classes_and_escapes_are_go_regexp_ones() {
    assert!(excluded("[^a]b", "cb"));
    assert!(!excluded("[^a]b", "ab"));
    assert!(excluded("[!a]b", "!b"));
    assert!(excluded("[!a]b", "ab"));
    assert!(!excluded("[!a]b", "cb"));
    assert!(excluded("a\\*", "a*"));
    assert!(!excluded("a\\*", "ab"));
    // `*` inside brackets becomes `[^/]*` there, whose `]` closes the class: `[a[^/]*]`.
    assert!(!excluded("[a*]", "a"));
    assert!(excluded("[a*]", "]"));
    assert!(excluded("[a*]", "a]"));
    assert!(!excluded("[a*]", "ab]"));
    // Perl and POSIX classes, ASCII as in Go; Unicode categories; C escapes.
    assert!(excluded("a\\d", "a5"));
    assert!(!excluded("a\\d", "ad"));
    assert!(!excluded("\\d", "\u{663}"));
    assert!(excluded("[\\d]", "5"));
    assert!(!excluded("[\\d]", "d"));
    assert!(excluded("\\w", "a"));
    assert!(!excluded("\\w", "é"));
    assert!(excluded("[[:alpha:]]", "a"));
    assert!(!excluded("[[:alpha:]]", ":"));
    assert!(excluded("\\pL", "é"));
    assert!(!excluded("\\pL", "1"));
    assert!(!excluded("\\a", "a"));
    assert!(excluded("\\a", "\u{7}"));
    // `?` is one character, however many bytes.
    assert!(excluded("é?", "é☺"));
    // `^` outside brackets anchors, in a regexp; a pattern without wildcards is compared as it is.
    assert!(!excluded("a^b*", "a^bc"));
    assert!(excluded("a^b", "a^b"));
    // `\Q` quotes the rest of the regexp, its closing `$` included.
    assert!(excluded("a\\Qb*", "ab[^/]*$x"));
}

/// `{` unescaped also lets Go's `\x{…}` and `\p{Name}` through, with Go's names only.
#[test]
fn go_unicode_names_and_code_points() {
    assert!(excluded("\\x{41}*", "AB"));
    assert!(excluded("\\p{Greek}b", "\u{3b1}b"));
    assert!(!excluded("\\p{Greek}b", "ab"));
    assert!(excluded("\\p{^Greek}b", "ab"));
    assert!(excluded("\\P{^Greek}b", "\u{3b1}b"));
    assert!(excluded("\\p{Any}", "\u{10ffff}"));
    assert!(Matcher::parse("\\p{Grek}").is_err());
    assert!(Matcher::parse("\\p{Letter}").is_err());
    assert!(Matcher::parse("\\x{110000}").is_err());
    // Go accepts surrogates, which match nothing.
    assert!(!excluded("\\x{d800}d*", "d"));
    assert!(excluded("[\\x{d7ff}-\\x{e000}]c", "\u{e000}c"));
    assert!(excluded("[^\\x{d800}]", "a"));
    // Every name Go knows is one the `regex` crate takes, as Go means it.
    for name in goregex::GO_CATEGORIES.iter().chain(goregex::GO_SCRIPTS) {
        assert!(goregex::to_regex(&format!("^\\p{{{name}}}\\P{{{name}}}$")).is_ok(), "{name}");
    }
}

/// Moby's escaping misses `|`, `{` and `}`: they reach Go's regexp as they are.
#[test]
fn bar_and_braces_reach_the_regexp() {
    assert!(excluded("a*|b", "ax"));
    assert!(excluded("a*|b", "q/b"));
    assert!(excluded("x{2}*", "xx"));
    assert!(!excluded("x{2}*", "x{2}"));
    // Not a repetition: braces are characters, as without wildcards.
    assert!(excluded("*.{js,ts}", "a.{js,ts}"));
    assert!(!excluded("*.{js,ts}", "a.js"));
    assert!(excluded("{a,b}", "{a,b}"));
    assert!(!excluded("{a,b}", "a"));
}

/// Paths are bytes: Go's regexp reads each byte of an invalid sequence as one U+FFFD.
#[test]
fn paths_need_not_be_utf8() {
    let m = Matcher::parse("?\n*\u{fffd}z\na\u{fffd}").expect("valid");
    let path = |bytes: &'static [u8]| Path::new(OsStr::from_bytes(bytes));
    assert!(m.excludes(path(b"\xff")));
    assert!(!m.excludes(path(b"\xe2\x82")));
    assert!(m.excludes(path(b"x\xe2\x82z")));
    assert!(!m.excludes(path(b"a\xff")));
}

#[test]
fn descends_into_excluded_dirs_only_for_exceptions_under_them() {
    let m = Matcher::parse("dir\n!dir/keep\nother").expect("valid");
    assert!(m.may_reinclude_under(Path::new("dir")));
    assert!(!m.may_reinclude_under(Path::new("other")));
    assert!(!m.may_reinclude_under(Path::new("di")));
    assert!(Matcher::parse("dir\n!dir/**").expect("valid").may_reinclude_under(Path::new("dir")));
    assert!(!Matcher::parse("dir\n!dir/**").expect("valid").may_reinclude_under(Path::new("dir/sub")));
    assert!(!Matcher::parse("dir").expect("valid").may_reinclude_under(Path::new("dir")));
}

/// BuildKit walks into every excluded directory once an exception has a wildcard (before a trailing `/*` or
/// `/**`), and the walk then keeps what such an exception re-includes.
#[test]
fn wildcard_exceptions_walk_every_excluded_dir() {
    let m = Matcher::parse("dir\n!dir/keep\nother\n!**/x").expect("valid");
    assert!(m.may_reinclude_under(Path::new("other")));
    assert!(!m.excludes(Path::new("other/x")));
    assert!(m.excludes(Path::new("other/y")));
    let m = Matcher::parse("vendor\n!vendor/*/LICENSE").expect("valid");
    assert!(m.may_reinclude_under(Path::new("vendor/lib")));
    assert!(!m.excludes(Path::new("vendor/lib/LICENSE")));
    assert!(m.excludes(Path::new("vendor/lib/code.go")));
}

#[test]
fn rejects_what_docker_rejects() {
    // Refused by moby's `New`: a lone `!` (`!/` cleans to it) and what `filepath.Match` calls malformed.
    for text in
        ["!", "! ", "!/", "a[", "[", "[^", "\\", "a\\", "[]a]", "[-]", "[x-]", "[a-b-c]", "[a-]]", "*[", "a*[-]"]
    {
        let error = Matcher::parse(text).expect_err(text);
        assert!(error.contains(&format!("`{}`", text.trim())) || error.contains("`!`"), "{text}: {error}");
    }
    // Refused by Go's regexp when moby first compiles them.
    for text in ["[z-a]", "a\\1", "[[:foo:]]", "[\\b]", "\\C", "\\pX", "\\e", "a{1001}*", "a**{2}", "[[:alpha:]"] {
        assert!(Matcher::parse(text).is_err(), "{text}");
    }
    // Accepted by both: `{` that is no repetition is a character, `|` an alternation (even an empty one).
    for text in ["a{", "a{,2}*", "a\\{", "a{2}{", "[\\]]", "**/", "/", "\\\\", "[[:alpha:]]*", "\\Q", "a|", "|*"] {
        assert!(Matcher::parse(text).is_ok(), "{text}");
    }
}

#[test]
fn cleans_like_go() {
    assert_eq!(clean("a//b/./c/"), "a/b/c");
    assert_eq!(clean("../a"), "../a");
    assert_eq!(clean("/../a"), "/a");
    assert_eq!(clean("a/.."), ".");
    assert_eq!(clean("/"), "/");
    assert_eq!(clean("**/../x"), "x");
}

#[test]
fn long_patterns() {
    for pattern in
        ["a".repeat(65_535), "?".repeat(2_000), "[a-z]".repeat(2_000), "**/a".repeat(1_000), "a|".repeat(10_000)]
    {
        let m = Matcher::parse(&pattern).unwrap_or_else(|e| panic!("{e}"));
        let _ = m.excludes(Path::new("some/path"));
    }
    // Far past the bound, an error quoting the start of the pattern.
    let error = Matcher::parse(&"*a{1000}".repeat(3_000)).expect_err("too large");
    assert!(error.len() < 300 && error.ends_with("the pattern is too large"), "{error}");
}

/// Verdicts of moby/patternmatcher (commit 5a6d842) built with Go, on random `.dockerignore` files read by its
/// `ignorefile.ReadAll`: whether the file is refused (by `New`, with the current Go's `filepath.Match`, or by a
/// pattern's Go regexp, which moby compiles on first use), and for each path (hex: some are not UTF-8) whether the
/// walk of `MatchesUsingParentResults` leaves it out and whether BuildKit walks into it when excluded.
#[test]
fn agrees_with_moby_on_random_files() {
    let mut checked = 0;
    for line in include_str!("moby_verdicts.jsonl").lines() {
        let case: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let text = case["ignore"].as_str().expect("ignore");
        let parsed = Matcher::parse(text);
        assert_eq!(parsed.is_err(), case["err"] == true, "{text:?}: {:?}", parsed.err());
        let Ok(m) = parsed else { continue };
        let column = |name: &str| case[name].as_array().cloned().unwrap_or_default();
        for ((path, excluded), walked) in column("paths").iter().zip(column("excluded")).zip(column("walked")) {
            let bytes = hex::decode(path.as_str().unwrap_or_default()).expect("hex");
            let path = Path::new(OsStr::from_bytes(&bytes));
            assert_eq!(m.excludes(path), excluded == true, "{text:?} on {path:?}");
            assert_eq!(m.may_reinclude_under(path), walked == true, "{text:?} walking {path:?}");
            checked += 1;
        }
    }
    assert!(checked > 2000, "{checked}");
}

const GLOB_BITS: &[&str] = &[
    "*", "**", "?", "[", "]", "^", "!", "-", "/", "\\", ".", "a", "b", "é", "☺", "{", "}", "|", "(", ")", "$", ":",
    "0", "1", "d", "p", "Q", "E", "x", "\u{feff}", " ", "\n", "\r", "#",
];

mod fuzz {
    use super::*;

    proptest! {
        #[test]
        fn no_input_panics(
            text in prop::collection::vec(prop::sample::select(GLOB_BITS), 0..40).prop_map(|bits| bits.concat()),
            any_text in "\\PC{0,30}",
            path in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            for text in [&text, &any_text] {
                if let Ok(m) = Matcher::parse(text) {
                    let path = Path::new(OsStr::from_bytes(&path));
                    let _ = (m.excludes(path), m.may_reinclude_under(path));
                }
            }
        }
    }
}
