//! `.dockerignore` by Docker's own rules: the file read as the Docker CLI and BuildKit read it (moby's
//! `ignorefile.ReadAll`), each pattern matched as moby/patternmatcher matches it, and directories walked as BuildKit
//! walks them.
//!
//! Hand-written on purpose rather than on a glob crate: Docker's rules are no glob dialect's, and every difference
//! changes what is sent to the daemon (a secret Docker keeps out must stay out). Patterns are anchored at the context
//! root; `*` and `?` stay in one path component; `**` spans directories in any position, and a leading `**` matches
//! at any depth (`**.key` leaves out `a/b/c.key`); a pattern that matches a directory leaves out all below it; `!`
//! re-includes, the last matching line deciding. Moby compiles a pattern into a Go regular expression, so character
//! classes and escapes are those of Go's regexp rather than of `filepath.Match`, quirks included (`[a*]` or `\d`);
//! see [`pattern`] and [`goregex`].

mod goregex;
mod pattern;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use pattern::Pattern;

/// The Go `bufio.Scanner` that reads the file fails on a line this long or longer (its 64 KiB buffer).
const MAX_LINE: usize = 64 * 1024;

/// The parsed `.dockerignore` of one context.
#[derive(Debug)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    /// BuildKit walks into every excluded directory once an exception has a wildcard before its trailing `/*` or
    /// `/**`: it cannot tell which directories such an exception might re-include files from.
    walk_all_excluded: bool,
}

impl Matcher {
    /// Parses the text of a `.dockerignore`. A pattern Docker would reject is an error naming it.
    ///
    /// One deliberate difference: moby compiles a pattern lazily and fails the build only when a path reaches a
    /// pattern its Go regexp cannot compile (`[z-a]`, `\1`); such a pattern can never match, and it is an error
    /// here at once, whatever the context holds.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::from_patterns(read_patterns(text)?)
    }

    /// Moby's `patternmatcher.New` on patterns already read, each with its line number for errors.
    fn from_patterns<S: AsRef<str>>(lines: impl IntoIterator<Item = (usize, S)>) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for (number, line) in lines {
            let line = line.as_ref();
            match Pattern::new(line) {
                Ok(Some(pattern)) => patterns.push(pattern),
                Ok(None) => {}
                Err(e) => return Err(format!("line {number}: invalid pattern `{}`: {e}", excerpt(line))),
            }
        }
        let walk_all_excluded = patterns
            .iter()
            .any(|p| p.exception() && without_trailing_glob(p.text()).contains(['*', '[', ']', '?', '^', '\\']));
        Ok(Self { patterns, walk_all_excluded })
    }

    /// Whether `rel` (relative to the context root) is left out of the context.
    ///
    /// As BuildKit's and the CLI's walkers decide it: each directory from the root down is matched with what its
    /// parent matched (moby's `MatchesUsingParentResults`), so a pattern that matched a directory holds for all
    /// below it. The root itself is never left out.
    pub fn excludes(&self, rel: &Path) -> bool {
        let mut path = Vec::new();
        let mut parent: Option<Vec<bool>> = None;
        let mut excluded = false;
        for component in rel.components() {
            let Component::Normal(name) = component else { continue };
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            let (matched, matches) = self.matches_using_parent_results(&path, parent.as_deref());
            excluded = matched;
            parent = Some(matches);
        }
        excluded
    }

    /// Whether the walk must still descend into the excluded directory `rel`, as BuildKit decides: never without
    /// exceptions; always when an exception has wildcards; otherwise only when an exception lies under it (`dir` +
    /// `!dir/keep` keeps `dir/keep`). The CLI's walk for the legacy builder makes only that last test, and so never
    /// finds `dir/sub/keep` for `!**/keep`; BuildKit, `docker build`'s default, does.
    pub fn may_reinclude_under(&self, rel: &Path) -> bool {
        if self.walk_all_excluded {
            return true;
        }
        let mut dir = rel.as_os_str().as_bytes().to_vec();
        dir.push(b'/');
        self.patterns.iter().filter(|p| p.exception()).any(|p| {
            let mut exception = without_trailing_glob(p.text()).as_bytes().to_vec();
            exception.push(b'/');
            exception.starts_with(&dir)
        })
    }

    /// Moby's `MatchesUsingParentResults`: whether `file` is excluded, and which patterns matched it or a parent,
    /// given those of its parent directory (`None` for a top-level entry, or to test every parent directory).
    ///
    /// A pattern is only tried while it could change the verdict (an exception once something matched, another
    /// pattern while nothing does), and only what was tried is passed down: Docker's walk, and not quite "the last
    /// matching pattern wins" (`a`, `!a/b`, `a` keeps `a/b/c`).
    fn matches_using_parent_results(&self, file: &[u8], parent: Option<&[bool]>) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut matches = vec![false; self.patterns.len()];
        let parent_dirs = if parent.is_none() { parent_dirs(file) } else { Vec::new() };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.and_then(|p| p.get(i)).copied().unwrap_or(false);
            if !hit {
                if pattern.exception() != matched {
                    continue;
                }
                hit = pattern.matches(file) || parent_dirs.iter().any(|dir| pattern.matches(dir));
            }
            matches[i] = hit;
            if hit {
                matched = !pattern.exception();
            }
        }
        (matched, matches)
    }
}

/// The patterns of a `.dockerignore`, with their line numbers, read as moby's `ignorefile.ReadAll` reads them: a
/// UTF-8 BOM dropped from the first line; lines starting with `#` skipped (only in the first column); each line
/// trimmed, blank ones skipped; after an optional `!`, trimmed again, cleaned as Go's `filepath.Clean` and stripped
/// of a leading `/`.
fn read_patterns(text: &str) -> Result<Vec<(usize, String)>, String> {
    let mut patterns = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        if raw.len() >= MAX_LINE {
            return Err(format!("line {number} is longer than Docker reads ({} bytes at most)", MAX_LINE - 1));
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = if index == 0 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (exception, pattern) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let mut pattern = if pattern.is_empty() { String::new() } else { clean(pattern) };
        if pattern.len() > 1
            && let Some(relative) = pattern.strip_prefix('/')
        {
            pattern = relative.to_owned();
        }
        if exception {
            pattern.insert(0, '!');
        }
        patterns.push((number, pattern));
    }
    Ok(patterns)
}

/// Go's `filepath.Clean` on a `/`-separated path: no empty or `.` components, `..` resolved where it can be, no
/// trailing `/`, and `.` for nothing.
fn clean(path: &str) -> String {
    String::from_utf8_lossy(&clean_bytes(path.as_bytes())).into_owned()
}

fn clean_bytes(path: &[u8]) -> Vec<u8> {
    let rooted = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|last| *last != b"..") => {
                parts.pop();
            }
            b".." if rooted => {}
            _ => parts.push(part),
        }
    }
    let mut cleaned = if rooted { b"/".to_vec() } else { Vec::new() };
    cleaned.extend_from_slice(&parts.join(&b'/'));
    if cleaned.is_empty() {
        cleaned.push(b'.');
    }
    cleaned
}

/// The parent directories of `file` that moby tries a pattern on, outermost first: the prefixes of Go's
/// `filepath.Dir(file)` at each `/`, none when that is `.`.
fn parent_dirs(file: &[u8]) -> Vec<Vec<u8>> {
    let Some(last_slash) = file.iter().rposition(|&b| b == b'/') else { return Vec::new() };
    let dir = clean_bytes(&file[..=last_slash]);
    if dir == b"." {
        return Vec::new();
    }
    let mut dirs: Vec<Vec<u8>> =
        dir.iter().enumerate().filter(|&(_, &b)| b == b'/').map(|(end, _)| dir[..end].to_vec()).collect();
    dirs.push(dir);
    dirs
}

/// `text`, cut short for an error message.
fn excerpt(text: &str) -> Cow<'_, str> {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// A pattern's text without a trailing `/**` or `/*` (in that order), as BuildKit's walker looks at exceptions.
fn without_trailing_glob(pattern: &str) -> &str {
    let pattern = pattern.strip_suffix("/**").unwrap_or(pattern);
    pattern.strip_suffix("/*").unwrap_or(pattern)
}
