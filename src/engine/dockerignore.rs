//! `.dockerignore` with Docker's own semantics (moby/patternmatcher as the Docker CLI applies it), on globset.
//!
//! Not gitignore: patterns are anchored at the context root, `*` and `?` stay within one path component, `**`
//! spans directories, a pattern matches a path or any of its parent directories, `!` re-includes, and the last
//! matching line wins.

use std::path::{Component, Path};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The parsed `.dockerignore` of one context.
#[derive(Debug)]
pub struct Matcher {
    set: GlobSet,
    /// Whether each pattern, in file order, is an exception (`!`).
    exceptions: Vec<bool>,
    /// The cleaned exception patterns, for moby's "may an excluded directory hold re-included files" test.
    exception_patterns: Vec<String>,
}

impl Matcher {
    /// Parses the text of a `.dockerignore`. A pattern Docker would reject is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = GlobSetBuilder::new();
        let mut exceptions = Vec::new();
        let mut exception_patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for line in text.lines() {
            // As moby's ignorefile.ReadAll: only a `#` in the first column starts a comment.
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
            if exception && pattern.is_empty() {
                return Err(format!("illegal exclusion pattern `{line}`"));
            }
            let pattern = clean(pattern);
            let pattern = match pattern.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_owned(),
                _ => pattern,
            };
            let glob = GlobBuilder::new(&to_glob(&pattern))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid pattern `{line}`: {e}"))?;
            set.add(glob);
            exceptions.push(exception);
            if exception {
                exception_patterns.push(pattern);
            }
        }
        let set = set.build().map_err(|e| format!("invalid patterns: {e}"))?;
        Ok(Self { set, exceptions, exception_patterns })
    }

    /// Whether `rel` (relative to the context root) is left out of the context.
    pub fn excludes(&self, rel: &Path) -> bool {
        // The last matching pattern decides, whether it matched the path itself or one of its parents.
        let mut last = None;
        let mut prefix = std::path::PathBuf::new();
        for component in rel.components() {
            prefix.push(component);
            last = self.set.matches(&prefix).into_iter().max().max(last);
        }
        last.is_some_and(|i| !self.exceptions[i])
    }

    /// Whether the walk must still descend into the excluded directory `rel`: as moby does, only when an
    /// exception pattern starts with that directory (so `dir` + `!dir/keep` keeps `dir/keep`).
    pub fn may_reinclude_under(&self, rel: &Path) -> bool {
        let dir = format!("{}/", rel.to_string_lossy());
        self.exception_patterns.iter().any(|p| format!("{p}/").starts_with(&dir))
    }
}

/// Go's `filepath.Clean` on a `/`-separated pattern.
fn clean(pattern: &str) -> String {
    let rooted = pattern.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(pattern).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            Component::ParentDir if !rooted => parts.push(".."),
            Component::ParentDir | Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Translates a Go pattern to globset syntax where they differ: braces are literal in Go, and a class opened by
/// `[!` is not negated in Go (only `[^` is, which globset also understands).
fn to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '[' if chars.peek() == Some(&'!') => {
                chars.next();
                // Go's `[!…]` holds a literal `!`: move it to the end of the class, where globset reads it literally.
                let mut class = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' && !class.is_empty() {
                        closed = true;
                        break;
                    }
                    class.push(c);
                }
                if closed {
                    out.push_str(&format!("[{class}!]"));
                } else {
                    // `[!]` or an unclosed class: leave it for globset to reject or read as Go would not; rare.
                    out.push_str(&format!("[!{class}"));
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &str, path: &str) -> bool {
        Matcher::parse(patterns).expect("valid patterns").excludes(Path::new(path))
    }

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

    #[test]
    fn comments_blank_lines_and_trimming() {
        let rules = "\u{feff}# a comment\n\n   foo   \n\t!  foo/bar \n";
        assert!(excluded(rules, "foo/baz"));
        assert!(!excluded(rules, "foo/bar"));
        assert!(!excluded(rules, "# a comment"));
    }

    #[test]
    fn go_character_classes_and_literal_braces() {
        assert!(excluded("[^a]b", "cb"));
        assert!(!excluded("[^a]b", "ab"));
        assert!(excluded("[!a]b", "!b"));
        assert!(excluded("[!a]b", "ab"));
        assert!(!excluded("[!a]b", "cb"));
        assert!(excluded("{a,b}", "{a,b}"));
        assert!(!excluded("{a,b}", "a"));
        assert!(excluded("a\\*", "a*"));
        assert!(!excluded("a\\*", "ab"));
    }

    #[test]
    fn descends_into_excluded_dirs_only_for_exceptions_under_them() {
        let m = Matcher::parse("dir\n!dir/keep\nother\n!**/x").expect("valid");
        assert!(m.may_reinclude_under(Path::new("dir")));
        assert!(!m.may_reinclude_under(Path::new("other")));
        assert!(!m.may_reinclude_under(Path::new("di")));
    }

    #[test]
    fn rejects_what_docker_rejects() {
        assert!(Matcher::parse("!").is_err());
        assert!(Matcher::parse("a[").is_err());
    }

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean("a//b/./c/"), "a/b/c");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("/"), "/");
    }
}
