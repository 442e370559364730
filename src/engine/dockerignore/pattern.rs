//! One `.dockerignore` pattern as moby/patternmatcher takes it: checked with Go's `filepath.Match` grammar, compiled
//! into a Go regular expression (or a plain string comparison when it has no wildcard), and matched against a path.
//!
//! Moby hands the class brackets and the escapes of a pattern to Go's regexp as they are, so those are read with
//! regexp's syntax, not `filepath.Match`'s: `\d` is a digit, `[[:alpha:]]` a letter, and `*` or `?` written inside
//! brackets turn into regexp text there (`[a*]` matches `a]`, not `a`). A `^` outside brackets anchors (`a^b*`
//! matches nothing), `|` alternates and `{2}` repeats. Only Docker's exact behaviour is the goal, oddities included.

use std::borrow::Cow;

use regex::Regex;

use super::clean;
use super::goregex;

/// One pattern, ready to match.
#[derive(Debug)]
pub(super) struct Pattern {
    /// The cleaned pattern without its `!` (moby's `Pattern.String()`).
    text: String,
    exception: bool,
    kind: Kind,
}

/// How moby matches a compiled pattern.
#[derive(Debug)]
enum Kind {
    /// The path is the pattern.
    Exact,
    /// The path starts with the pattern less its trailing `**`.
    Prefix,
    /// The path ends with the pattern less its leading `**` (or is that, less a leading `/`).
    Suffix,
    Regex(Regex),
}

/// What moby's compiler decides a pattern needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

impl Pattern {
    /// One pattern as moby's `New` takes it: trimmed (`None` if blank), cleaned, a leading `!` making it an
    /// exception, then checked and compiled.
    pub(super) fn new(line: &str) -> Result<Option<Self>, String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let cleaned = clean(line);
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err("an exception (`!`) of nothing".to_owned()),
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        if !is_valid_go_glob(text) {
            return Err("syntax error in pattern".to_owned());
        }
        let kind = match compile(text) {
            (MatchType::Exact, _) => Kind::Exact,
            (MatchType::Prefix, _) => Kind::Prefix,
            (MatchType::Suffix, _) => Kind::Suffix,
            (MatchType::Regex, expression) => Kind::Regex(goregex::to_regex(&expression)?),
        };
        Ok(Some(Self { text: text.to_owned(), exception, kind }))
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn exception(&self) -> bool {
        self.exception
    }

    /// Whether the pattern matches `path` (`/`-separated, any bytes), as moby's `Pattern.match`.
    pub(super) fn matches(&self, path: &[u8]) -> bool {
        // Moby slices its pattern by bytes here; so do these, which matters only for a pattern led by a BOM.
        let text = self.text.as_bytes();
        match &self.kind {
            Kind::Exact => path == text,
            Kind::Prefix => path.starts_with(text.get(..text.len().saturating_sub(2)).unwrap_or_default()),
            Kind::Suffix => {
                let suffix = text.get(2..).unwrap_or_default();
                path.ends_with(suffix)
                    || suffix.split_first().is_some_and(|(&first, rest)| first == b'/' && path == rest)
            }
            Kind::Regex(regex) => regex.is_match(&as_go_runes(path)),
        }
    }
}

/// `path` as Go's regexp reads a string: UTF-8, each byte of an invalid sequence being one U+FFFD.
fn as_go_runes(path: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(path) {
        return Cow::Borrowed(text);
    }
    let mut text = String::with_capacity(path.len() + 8);
    for chunk in path.utf8_chunks() {
        text.push_str(chunk.valid());
        text.extend(chunk.invalid().iter().map(|_| char::REPLACEMENT_CHARACTER));
    }
    Cow::Owned(text)
}

/// Moby's compiler: the match type of a cleaned pattern and, for [`MatchType::Regex`], the Go regular expression.
///
/// `*` becomes `[^/]*` and `?` `[^/]`; `**` becomes `(.*/)?` (eating a `/` after it), or at the end a prefix test
/// (`.*` after another wildcard); `**` at the very start makes a suffix test unless a wildcard follows. Go-regexp
/// metacharacters that mean nothing to `filepath.Match` are escaped, all but `|{}`; an escaped character, `[` and `]`
/// go through as they are, to be read by Go's regexp.
pub(super) fn compile(pattern: &str) -> (MatchType, String) {
    let mut expression = String::from("^");
    let mut kind = MatchType::Exact;
    // Go's text/scanner, which moby reads the pattern with, skips a BOM at the start.
    let body = pattern.strip_prefix('\u{feff}').unwrap_or(pattern);
    let mut chars = body.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_some() {
                    expression.push_str("(.*/)?");
                    kind = MatchType::Regex;
                } else if kind == MatchType::Exact {
                    kind = MatchType::Prefix;
                } else {
                    expression.push_str(".*");
                    kind = MatchType::Regex;
                }
                if first {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                expression.push_str("[^/]*");
                kind = MatchType::Regex;
            }
            '?' => {
                expression.push_str("[^/]");
                kind = MatchType::Regex;
            }
            // Moby means to escape `.+()|{}$`, but its bitmap (a bit `c / 8` in a byte) loses every character from
            // `@` on: `|`, `{` and `}` reach Go's regexp as they are, an alternation (`a*|b`) and a repetition (`x{2}*`).
            '.' | '+' | '(' | ')' | '$' => {
                expression.push('\\');
                expression.push(c);
            }
            '\\' => match chars.next() {
                Some(escaped) => {
                    expression.push('\\');
                    expression.push(escaped);
                    kind = MatchType::Regex;
                }
                // Unreachable after the syntax check, which rejects a trailing `\`.
                None => expression.push('\\'),
            },
            '[' | ']' => {
                expression.push(c);
                kind = MatchType::Regex;
            }
            _ => expression.push(c),
        }
        first = false;
    }
    if kind == MatchType::Regex {
        expression.push('$');
    }
    (kind, expression)
}

/// Whether Go's `filepath.Match` accepts `pattern` (on Unix): every chunk between unbracketed `*`s well formed, with
/// no trailing `\`, and every `[...]` closed, holding at least one character or `lo-hi` range, with `-` and `]`
/// escaped where they are not syntax.
pub(super) fn is_valid_go_glob(pattern: &str) -> bool {
    let mut rest = pattern;
    while !rest.is_empty() {
        let (chunk, after) = scan_chunk(rest);
        if !is_valid_chunk(chunk) {
            return false;
        }
        rest = after;
    }
    true
}

/// Go's `scanChunk`: leading `*`s dropped, then everything up to the next `*` outside brackets.
fn scan_chunk(pattern: &str) -> (&str, &str) {
    let pattern = pattern.trim_start_matches('*');
    let bytes = pattern.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    // `i` stops on an ASCII `*` or at the end, both character boundaries.
    pattern.split_at_checked(i).unwrap_or((pattern, ""))
}

/// Whether Go's `matchChunk` finds `chunk` well formed.
fn is_valid_chunk(chunk: &str) -> bool {
    let mut rest = chunk;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '[' => {
                rest = rest.strip_prefix('^').unwrap_or(rest);
                let mut ranges = 0;
                loop {
                    if ranges > 0
                        && let Some(after) = rest.strip_prefix(']')
                    {
                        rest = after;
                        break;
                    }
                    let Some(after) = class_char(rest) else { return false };
                    rest = after;
                    if let Some(after) = rest.strip_prefix('-') {
                        let Some(after) = class_char(after) else { return false };
                        rest = after;
                    }
                    ranges += 1;
                }
            }
            '\\' => {
                let Some(escaped) = rest.chars().next() else { return false };
                rest = &rest[escaped.len_utf8()..];
            }
            _ => {}
        }
    }
    true
}

/// Go's `getEsc`: one class character, escaped or not (an unescaped `-` or `]` is not one), which more of the class
/// must follow. Returns what follows.
fn class_char(s: &str) -> Option<&str> {
    if s.starts_with(['-', ']']) {
        return None;
    }
    let s = s.strip_prefix('\\').unwrap_or(s);
    let c = s.chars().next()?;
    let rest = &s[c.len_utf8()..];
    (!rest.is_empty()).then_some(rest)
}
