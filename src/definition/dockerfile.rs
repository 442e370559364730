//! Image references in a rendered Dockerfile: `FROM`, `COPY --from` and `RUN --mount=...,from=`.
//!
//! Only as much of BuildKit's Dockerfile syntax is understood as finding those needs: the `escape` parser
//! directive, line continuations, comments, heredoc bodies (skipped), `ARG` defaults and the `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alternative}` substitutions (also without the `:`), and shell-style quotes.
//! `ENV` values are not tracked, so a `--from` naming an `ENV` variable is reported as undefined.

use std::cell::Cell;
use std::collections::HashMap;

/// Where a reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceKind {
    From,
    CopyFrom,
    MountFrom,
}

/// A reference to an image (never a stage name, never `scratch`), with `ARG` defaults substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub reference: String,
    /// 1-based line of the instruction in the rendered Dockerfile.
    pub line: usize,
    pub kind: ReferenceKind,
    /// A `FROM --platform=…`: the image is for the platform the line names, whatever the build's.
    pub pinned_platform: bool,
}

/// A Dockerfile whose references cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DockerfileError {
    pub line: usize,
    pub message: String,
}

/// `ARG` names and their values; `None` for an `ARG` declared without a default.
type Args = HashMap<String, Option<String>>;

/// How many bytes variable substitutions may produce in one Dockerfile: `ARG`s that double each other would
/// otherwise take all memory.
const MAX_SUBSTITUTED: usize = 16 << 20;
/// How deeply `${VAR:-${...}}` may nest: the expansion recurses once per level.
const MAX_NESTING: usize = 64;

/// Every image reference in `dockerfile`, in file order.
pub fn image_references(dockerfile: &str) -> Result<Vec<ImageReference>, DockerfileError> {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let escape = escape_directive(&lines);
    let instructions = instructions(&lines, escape)?;
    let lexer = Lexer { escape, budget: Cell::new(MAX_SUBSTITUTED) };

    // `COPY --from` and `--mount=from=` may name any stage, even a later one.
    let mut all_stages = Vec::new();
    for instruction in instructions.iter().filter(|i| i.keyword == "FROM") {
        if let Some(name) = parse_from(instruction, escape)?.stage {
            all_stages.push(name.to_ascii_lowercase());
        }
    }
    let is_stage =
        |name: &str| name.bytes().all(|b| b.is_ascii_digit()) || all_stages.contains(&name.to_ascii_lowercase());

    let mut references = Vec::new();
    let mut global_args = Args::new();
    // The current stage's `ARG`s; `None` before the first `FROM`.
    let mut stage_args: Option<Args> = None;
    let mut earlier_stages: Vec<String> = Vec::new();
    for instruction in &instructions {
        let line = instruction.line;
        let error = |message: String| DockerfileError { line, message };
        let mut push = |reference: String, kind, pinned_platform| {
            references.push(ImageReference { reference, line, kind, pinned_platform })
        };
        match instruction.keyword.as_str() {
            "ARG" => match stage_args.as_mut() {
                Some(stage) => declare_args(instruction, &lexer, stage, Some(&global_args))?,
                None => declare_args(instruction, &lexer, &mut global_args, None)?,
            },
            "FROM" => {
                let from = parse_from(instruction, escape)?;
                let image = lexer.expand(from.image, &global_args).map_err(|e| error(e.message("FROM", from.image)))?;
                if image.is_empty() {
                    return Err(error(format!("FROM image `{}` is empty once variables are substituted", from.image)));
                }
                let lower = image.to_ascii_lowercase();
                if lower != "scratch" && !earlier_stages.contains(&lower) {
                    push(image, ReferenceKind::From, from.pinned_platform);
                }
                earlier_stages.extend(from.stage.map(str::to_ascii_lowercase));
                stage_args = Some(Args::new());
            }
            "COPY" => {
                let args = stage_args.as_ref().unwrap_or(&global_args);
                for flag in flags(&instruction.args, escape) {
                    let Some(value) = strip_prefix_ignore_case(flag, "--from=") else { continue };
                    let from = lexer.expand(value, args).map_err(|e| error(e.message("COPY --from", value)))?;
                    if from.is_empty() {
                        return Err(error("COPY --from= names no stage or image".into()));
                    }
                    if !is_stage(&from) {
                        push(from, ReferenceKind::CopyFrom, false);
                    }
                }
            }
            "RUN" => {
                let args = stage_args.as_ref().unwrap_or(&global_args);
                for flag in flags(&instruction.args, escape) {
                    let Some(mount) = strip_prefix_ignore_case(flag, "--mount=") else { continue };
                    // `--mount="type=bind,from=x"` quotes the whole list.
                    let mount =
                        ['"', '\''].iter().find_map(|&q| mount.strip_prefix(q)?.strip_suffix(q)).unwrap_or(mount);
                    for option in split_unquoted(mount, escape, |c| c == ',') {
                        let Some((key, value)) = option.split_once('=') else { continue };
                        if !unquote(key).eq_ignore_ascii_case("from") {
                            continue;
                        }
                        let from = lexer.expand(value, args).map_err(|e| error(e.message("RUN --mount", value)))?;
                        if !from.is_empty() && !is_stage(&from) {
                            push(from, ReferenceKind::MountFrom, false);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(references)
}

/// `dockerfile` with image references replaced: `replacement(reference)` says what to write instead of a
/// reference (`None`: leave it). A reference is replaced where it is written, as a whole word within its
/// instruction's lines; one that is not written there (it comes from an `ARG`) cannot be, and is an error.
pub fn replace_references(
    dockerfile: &str,
    replacement: impl Fn(&ImageReference) -> Option<String>,
) -> Result<String, DockerfileError> {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let spans: HashMap<usize, usize> =
        instructions(&lines, escape_directive(&lines))?.iter().map(|i| (i.line, i.last_line)).collect();
    let mut out: Vec<String> = dockerfile.split_inclusive('\n').map(str::to_owned).collect();
    for reference in image_references(dockerfile)? {
        let Some(new) = replacement(&reference) else { continue };
        let last = spans.get(&reference.line).copied().unwrap_or(reference.line);
        let found = (reference.line - 1..last.min(out.len())).find_map(|index| {
            let at = find_word(&out[index], &reference.reference)?;
            Some((index, at))
        });
        let Some((index, at)) = found else {
            return Err(DockerfileError {
                line: reference.line,
                message: format!(
                    "`{}` is not written out here (it comes from a variable), so it cannot be replaced by the image \
                     built for this platform; write it out, e.g. with image_tag",
                    reference.reference
                ),
            });
        };
        out[index].replace_range(at..at + reference.reference.len(), &new);
    }
    Ok(out.concat())
}

/// Where `word` is in `line` as a whole word of an instruction: between the line's ends, blanks, quotes, `=`
/// (flags) and `,` (mount options).
fn find_word(line: &str, word: &str) -> Option<usize> {
    let bound = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ','));
    line.match_indices(word)
        .map(|(at, _)| at)
        .find(|&at| bound(line[..at].chars().next_back()) && bound(line[at + word.len()..].chars().next()))
}

/// One instruction, continuation lines joined and heredoc bodies left out.
struct Instruction {
    /// 1-based line of its first physical line.
    line: usize,
    /// 1-based line of its last physical line (continuations included, heredoc bodies not).
    last_line: usize,
    /// Uppercased.
    keyword: String,
    args: String,
}

/// The `# escape=` parser directive; directives are only read at the very top of the file.
fn escape_directive(lines: &[&str]) -> char {
    for line in lines {
        let Some(directive) = line.trim().strip_prefix('#') else { break };
        let Some((name, value)) = directive.split_once('=') else { break };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if name.eq_ignore_ascii_case("escape") && value.trim() == "`" {
            return '`';
        }
    }
    '\\'
}

fn instructions(lines: &[&str], escape: char) -> Result<Vec<Instruction>, DockerfileError> {
    let is_skipped = |line: &str| line.trim().is_empty() || line.trim_start().starts_with('#');
    let mut instructions = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let start = index;
        index += 1;
        if is_skipped(lines[start]) {
            continue;
        }
        // Join continuation lines; comment and empty lines inside a continuation are dropped, as BuildKit does.
        let mut text = String::new();
        let mut current = lines[start];
        while let Some(body) = current.trim_end_matches([' ', '\t']).strip_suffix(escape) {
            text.push_str(body);
            match lines[index..].iter().position(|l| !is_skipped(l)) {
                Some(offset) => {
                    current = lines[index + offset];
                    index += offset + 1;
                }
                None => {
                    current = "";
                    index = lines.len();
                }
            }
        }
        text.push_str(current);
        let last_line = index;

        let text = text.trim();
        let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let keyword = keyword.to_ascii_uppercase();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            // Heredoc bodies follow the instruction in order; their lines are not instructions.
            for (delimiter, strip_tabs) in heredocs(args) {
                let end = lines[index..].iter().position(|l| {
                    let l = if strip_tabs { l.trim_start_matches('\t') } else { l };
                    l == delimiter
                });
                let Some(end) = end else {
                    return Err(DockerfileError {
                        line: start + 1,
                        message: format!("heredoc `{delimiter}` has no terminating line `{delimiter}`"),
                    });
                };
                index += end + 1;
            }
        }
        instructions.push(Instruction { line: start + 1, last_line, keyword, args: args.trim().to_owned() });
    }
    Ok(instructions)
}

/// Heredoc delimiters opened by `args` (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<'EOF'`), with whether tabs are stripped.
fn heredocs(args: &str) -> Vec<(&str, bool)> {
    args.split_whitespace()
        .filter_map(|word| {
            let word = word.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix("<<")?;
            let (word, strip_tabs) = word.strip_prefix('-').map_or((word, false), |w| (w, true));
            let delimiter =
                ['"', '\''].iter().find_map(|&q| word.strip_prefix(q).and_then(|w| w.strip_suffix(q))).unwrap_or(word);
            let valid = !delimiter.is_empty() && !delimiter.contains(['<', '"', '\'']);
            valid.then_some((delimiter, strip_tabs))
        })
        .collect()
}

struct FromLine<'a> {
    image: &'a str,
    stage: Option<&'a str>,
    /// It has a `--platform=` flag.
    pinned_platform: bool,
}

/// `FROM [--flag=...]... image [AS name]`.
fn parse_from(instruction: &Instruction, escape: char) -> Result<FromLine<'_>, DockerfileError> {
    let error = |message: &str| DockerfileError { line: instruction.line, message: message.into() };
    let all = split_unquoted(&instruction.args, escape, char::is_whitespace);
    let flags = all.iter().take_while(|w| w.starts_with("--"));
    let pinned_platform = flags.clone().any(|flag| strip_prefix_ignore_case(flag, "--platform=").is_some());
    let words: Vec<&str> = all.iter().skip(flags.count()).copied().collect();
    match words[..] {
        [] => Err(error("FROM has no image")),
        [image] => Ok(FromLine { image, stage: None, pinned_platform }),
        [image, as_, stage] if as_.eq_ignore_ascii_case("as") => {
            Ok(FromLine { image, stage: Some(stage), pinned_platform })
        }
        _ => Err(error("expected `FROM [--platform=...] image [AS name]`")),
    }
}

/// `ARG NAME[=value] ...` into `scope`; a bare `ARG NAME` in a stage takes the global default (`inherited`).
fn declare_args(
    instruction: &Instruction,
    lexer: &Lexer,
    scope: &mut Args,
    inherited: Option<&Args>,
) -> Result<(), DockerfileError> {
    let error = |message: String| DockerfileError { line: instruction.line, message };
    for word in split_unquoted(&instruction.args, lexer.escape, char::is_whitespace) {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => match lexer.expand(value, scope) {
                Ok(value) => (name, Some(value)),
                Err(e @ ExpandError { problem: ExpandProblem::Limit(_), .. }) => {
                    return Err(error(e.message("ARG", value)));
                }
                // An undefined variable in a default expands to nothing, as in BuildKit.
                Err(e) => (name, Some(e.lenient)),
            },
            None => (word, inherited.unwrap_or(scope).get(word).cloned().flatten()),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(error(format!("invalid ARG name `{name}`")));
        }
        scope.insert(name.to_owned(), value);
    }
    Ok(())
}

/// The leading `--flag[=value]` words of an instruction's arguments.
fn flags(args: &str, escape: char) -> impl Iterator<Item = &str> {
    split_unquoted(args, escape, char::is_whitespace).into_iter().take_while(|w| w.starts_with("--"))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Splits at unquoted, unescaped separators outside `${...}`, keeping quotes and escapes for [`expand`]; drops empty pieces.
fn split_unquoted(text: &str, escape: char, is_separator: impl Fn(char) -> bool) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut quote, mut escaped, mut braces) = (0, None, false, 0);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == escape && quote != Some('\'') {
            escaped = true;
        } else if c == '{' && quote != Some('\'') && text[..i].ends_with('$') {
            // `${VAR:-a default}` is one word.
            braces += 1;
        } else if c == '}' && braces > 0 {
            braces -= 1;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if braces == 0 && is_separator(c) {
            pieces.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    pieces.push(&text[start..]);
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// `text` with quotes removed, no variables substituted.
fn unquote(text: &str) -> String {
    text.chars().filter(|&c| c != '"' && c != '\'').collect()
}

/// Why a word could not be expanded.
struct ExpandError {
    problem: ExpandProblem,
    /// The expansion with undefined variables as empty strings, where that makes sense.
    lenient: String,
}

enum ExpandProblem {
    Undefined(String),
    Unsupported(String),
    /// [`MAX_SUBSTITUTED`] or [`MAX_NESTING`] reached: the Dockerfile cannot be read.
    Limit(String),
}

impl ExpandError {
    fn message(&self, what: &str, word: &str) -> String {
        let word: String = word.chars().take(80).collect();
        match &self.problem {
            ExpandProblem::Undefined(name) => format!("{what} uses undefined variable `{name}`"),
            ExpandProblem::Unsupported(form) => format!("{what} `{word}`: unsupported substitution `{form}`"),
            ExpandProblem::Limit(limit) => format!("{what} `{word}`: {limit}"),
        }
    }
}

/// BuildKit's shell lexer, as far as references need it, within limits for the whole Dockerfile.
struct Lexer {
    escape: char,
    /// Bytes substitutions may still produce.
    budget: Cell<usize>,
}

impl Lexer {
    /// Removes quotes and escapes and substitutes variables.
    fn expand(&self, word: &str, args: &Args) -> Result<String, ExpandError> {
        expand(word, args, self, 0)
    }

    /// Takes `bytes` from the budget; false when it is spent.
    fn spend(&self, bytes: usize) -> bool {
        let left = self.budget.get();
        self.budget.set(left.saturating_sub(bytes));
        bytes <= left
    }
}

fn expand(word: &str, args: &Args, lexer: &Lexer, depth: usize) -> Result<String, ExpandError> {
    let escape = lexer.escape;
    let mut out = String::new();
    let mut problem = None;
    let mut quote = None;
    let mut rest = word;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('\'') => out.push(c),
            Some(_) if c == '"' => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            _ if c == escape => match rest.chars().next() {
                // Inside double quotes the escape only protects `"`, `$` and itself.
                Some(next) if quote.is_none() || next == '"' || next == '$' || next == escape => {
                    out.push(next);
                    rest = &rest[next.len_utf8()..];
                }
                _ => out.push(c),
            },
            _ if c == '$' => {
                let (value, after) = substitute(rest, args, lexer, depth, &mut problem);
                if matches!(problem, Some(ExpandProblem::Limit(_))) {
                    break;
                }
                out.push_str(&value);
                rest = after;
            }
            _ => out.push(c),
        }
    }
    match problem {
        Some(problem) => Err(ExpandError { problem, lenient: out }),
        None => Ok(out),
    }
}

/// Substitutes the variable after a `$` at the start of `rest`; returns its value and what follows it. Records
/// the first problem met (in `problem`) and goes on with an empty value; a [`ExpandProblem::Limit`] replaces
/// any other, as it stops the expansion.
fn substitute<'a>(
    rest: &'a str,
    args: &Args,
    lexer: &Lexer,
    depth: usize,
    problem: &mut Option<ExpandProblem>,
) -> (String, &'a str) {
    let (value, after) = substitute_unlimited(rest, args, lexer, depth, problem);
    if !lexer.spend(value.len()) {
        let limit = format!("variables expand to more than {} MiB", MAX_SUBSTITUTED >> 20);
        *problem = Some(ExpandProblem::Limit(limit));
        return (String::new(), "");
    }
    (value, after)
}

fn substitute_unlimited<'a>(
    rest: &'a str,
    args: &Args,
    lexer: &Lexer,
    depth: usize,
    problem: &mut Option<ExpandProblem>,
) -> (String, &'a str) {
    let name_len = |s: &str| s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    let value = |name: &str| args.get(name).cloned().flatten();
    let undefined = |name: &str, problem: &mut Option<ExpandProblem>| {
        problem.get_or_insert_with(|| ExpandProblem::Undefined(name.to_owned()));
        String::new()
    };

    if let Some(braced) = rest.strip_prefix('{') {
        if depth >= MAX_NESTING {
            *problem = Some(ExpandProblem::Limit(format!("`${{...}}` nested more than {MAX_NESTING} deep")));
            return (String::new(), "");
        }
        // Find the matching `}`, allowing `${...}` nested in a default.
        let mut open = 0;
        let close = braced.char_indices().find(|&(i, c)| match c {
            '{' if braced[..i].ends_with('$') => {
                open += 1;
                false
            }
            '}' if open > 0 => {
                open -= 1;
                false
            }
            '}' => true,
            _ => false,
        });
        let Some((close, _)) = close else {
            problem.get_or_insert_with(|| ExpandProblem::Unsupported(format!("${rest}")));
            return (String::new(), "");
        };
        let (inner, after) = (&braced[..close], &braced[close + 1..]);
        let (name, modifier) = inner.split_at(name_len(inner));
        let (colon, modifier) = modifier.strip_prefix(':').map_or((false, modifier), |m| (true, m));
        let current = value(name).filter(|v| !colon || !v.is_empty());
        let mut word = |w: &str| match expand(w, args, lexer, depth + 1) {
            Ok(v) => v,
            Err(ExpandError { problem: limit @ ExpandProblem::Limit(_), .. }) => {
                *problem = Some(limit);
                String::new()
            }
            Err(e) => {
                problem.get_or_insert(e.problem);
                e.lenient
            }
        };
        let result = match (modifier.chars().next(), current) {
            _ if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) => None,
            (None, Some(v)) if !colon => Some(v),
            (None, None) if !colon => Some(undefined(name, problem)),
            (Some('-'), Some(v)) => Some(v),
            (Some('-'), None) => Some(word(&modifier[1..])),
            (Some('+'), Some(_)) => Some(word(&modifier[1..])),
            (Some('+'), None) => Some(String::new()),
            (Some('?'), Some(v)) => Some(v),
            (Some('?'), None) => Some(undefined(name, problem)),
            _ => None,
        };
        let result = result.unwrap_or_else(|| {
            problem.get_or_insert_with(|| ExpandProblem::Unsupported(format!("${{{inner}}}")));
            String::new()
        });
        return (result, after);
    }
    let len = name_len(rest);
    if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
        return ("$".into(), rest);
    }
    let name = &rest[..len];
    (value(name).unwrap_or_else(|| undefined(name, problem)), &rest[len..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReferenceKind::{CopyFrom, From, MountFrom};

    fn refs(dockerfile: &str) -> Vec<(String, usize, ReferenceKind)> {
        image_references(dockerfile)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|r| (r.reference, r.line, r.kind))
            .collect()
    }

    fn r(reference: &str, line: usize, kind: ReferenceKind) -> (String, usize, ReferenceKind) {
        (reference.to_owned(), line, kind)
    }

    fn error(dockerfile: &str) -> DockerfileError {
        image_references(dockerfile).unwrap_err()
    }

    #[test]
    fn from_and_stages() {
        let text = "FROM --platform=linux/amd64 reg.example/base:1 As Build\nRUN make\n\
                    from build AS test\nFROM scratch\nFROM BUILD\nfrom other:2 as final\n";
        assert_eq!(refs(text), vec![r("reg.example/base:1", 1, From), r("other:2", 6, From)]);
        // Only an earlier stage is a stage reference for FROM.
        assert_eq!(refs("FROM later\nFROM x AS later\n"), vec![r("later", 1, From), r("x", 2, From)]);
        let pinned: Vec<bool> =
            image_references(text).unwrap().into_iter().map(|reference| reference.pinned_platform).collect();
        assert_eq!(pinned, [true, false]);
        let flags = "FROM --PLATFORM=$BUILDPLATFORM --other=x tool AS t\nFROM --other=x base\nCOPY --from=img / /\n";
        let pinned: Vec<bool> = image_references(flags).unwrap().into_iter().map(|r| r.pinned_platform).collect();
        assert_eq!(pinned, [true, false, false]);
    }

    #[test]
    fn comments_continuations_and_case() {
        let text = "# syntax=docker/dockerfile:1\n\n  # comment\nfrom \\\n  # inside\n\n  base:1 \\ \n  as b\n\
                    cOpY --from=other:3 \\\n  /a /b\n";
        assert_eq!(refs(text), vec![r("base:1", 4, From), r("other:3", 9, CopyFrom)]);
        let crlf = "FROM a\r\nCOPY --from=b:1 \\\r\n  /x /y\r\n";
        assert_eq!(refs(crlf), vec![r("a", 1, From), r("b:1", 2, CopyFrom)]);
    }

    #[test]
    fn escape_directive() {
        let text = "# escape=`\nFROM base `\n  AS b\nRUN echo \\\nFROM c\n";
        // With a backtick escape, the trailing `\` is no continuation, so `FROM c` is an instruction.
        assert_eq!(refs(text), vec![r("base", 2, From), r("c", 5, From)]);
        // A directive after a comment is just a comment.
        assert_eq!(refs("# hello\n# escape=`\nFROM a \\\n  AS x\nFROM b\n"), vec![r("a", 3, From), r("b", 5, From)]);
    }

    #[test]
    fn heredocs_are_not_instructions() {
        let text = "FROM a\nRUN <<EOF\nFROM not-an-image\nEOF\nRUN <<-'END' cat <<\"TWO\"\n\tFROM nope\n\tEND\n\
                    COPY --from=nope2 x y\nTWO\nCOPY <<EOF /file\nFROM nope3\nEOF\nFROM b\n";
        assert_eq!(refs(text), vec![r("a", 1, From), r("b", 13, From)]);
        assert_eq!(error("FROM a\nRUN <<EOF\necho\n").line, 2);
    }

    #[test]
    fn global_args() {
        let text = "ARG REG=reg.example\nARG BASE=\"base\" TAG='1.0'\nARG EMPTY=\nARG REF=${REG}/x\n\
                    FROM $REG/${BASE}:${TAG} AS one\nFROM ${MISSING:-dflt}:${TAG:+t${TAG}}\n\
                    FROM ${EMPTY:-e}${EMPTY-x}${EMPTY+y}\nFROM $REF\n";
        assert_eq!(
            refs(text),
            vec![
                r("reg.example/base:1.0", 5, From),
                r("dflt:t1.0", 6, From),
                r("ey", 7, From),
                r("reg.example/x", 8, From)
            ]
        );
        // Stage ARGs do not reach FROM.
        assert_eq!(error("FROM a\nARG X=1\nFROM $X\n").message, "FROM uses undefined variable `X`");
    }

    #[test]
    fn undefined_and_malformed() {
        assert_eq!(
            error("ARG BASE_IMAGE\nFROM docker-registry.wikimedia.org/${BASE_IMAGE} AS b\n"),
            DockerfileError { line: 2, message: "FROM uses undefined variable `BASE_IMAGE`".into() }
        );
        assert_eq!(error("FROM $NOPE\n").message, "FROM uses undefined variable `NOPE`");
        assert_eq!(error("FROM ${NOPE:?set it}\n").message, "FROM uses undefined variable `NOPE`");
        assert_eq!(error("FROM\n").message, "FROM has no image");
        assert_eq!(error("FROM --platform=x\n").message, "FROM has no image");
        assert_eq!(refs("ARG A=x\nFROM ${B:-a b}${A:+\"c d\"}\n"), vec![r("a bc d", 2, From)]);
        assert!(error("FROM a b\n").message.starts_with("expected `FROM"));
        assert!(error("FROM a AS\n").message.starts_with("expected `FROM"));
        assert!(error("ARG E=\nFROM ${E}\n").message.contains("empty"));
        assert!(error("ARG A=x\nFROM ${A#x}\n").message.contains("unsupported substitution `${A#x}`"));
        assert!(error("FROM ${A\n").message.contains("unsupported"));
        assert_eq!(error("ARG =x\n").message, "invalid ARG name ``");
    }

    #[test]
    fn references_are_replaced_where_written() {
        let dockerfile = "ARG B=reg/b:1\nFROM reg/a:1 AS build\nCOPY --from=reg/c:2 \\\n  /x /y\nRUN --mount=type=bind,from=reg/a:1,target=/m true\nFROM reg/a:10\n";
        let replaced =
            replace_references(dockerfile, |r| (r.reference != "reg/a:10").then(|| format!("local/{}", r.reference)))
                .unwrap();
        assert_eq!(
            replaced,
            "ARG B=reg/b:1\nFROM local/reg/a:1 AS build\nCOPY --from=local/reg/c:2 \\\n  /x /y\nRUN --mount=type=bind,from=local/reg/a:1,target=/m true\nFROM reg/a:10\n"
        );
        // A reference written on a continuation line.
        let continued = replace_references("FROM \\\n  reg/a:1\n", |_| Some("x".into())).unwrap();
        assert_eq!(continued, "FROM \\\n  x\n");
        // Nothing to replace: the text is kept byte for byte, without a final newline too.
        assert_eq!(replace_references("FROM reg/a:1", |_| None).unwrap(), "FROM reg/a:1");
        let through_arg = replace_references("ARG B=reg/b:1\nFROM $B\n", |_| Some("x".into())).unwrap_err();
        assert_eq!(through_arg.line, 2);
        assert!(through_arg.message.contains("`reg/b:1` is not written out here"), "{through_arg:?}");
    }

    #[test]
    fn expansion_is_bounded() {
        // Each ARG doubles the last: 2^47 bytes unbounded.
        let mut doubling = String::from("ARG A0=xx\n");
        for i in 1..48 {
            doubling.push_str(&format!("ARG A{i}=$A{p}$A{p}\n", p = i - 1));
        }
        doubling.push_str("FROM $A47\n");
        let e = error(&doubling);
        assert!(e.message.contains("variables expand to more than 16 MiB"), "{e:?}");
        assert!(e.line > 20 && e.line < 48, "{e:?}");
        // Nesting recurses once per level.
        let nested = |n: usize| format!("FROM {}x{}\n", "${a:-".repeat(n), "}".repeat(n));
        assert_eq!(refs(&nested(MAX_NESTING)), vec![r("x", 1, From)]);
        assert!(error(&nested(20_000)).message.contains("nested more than 64 deep"));
        assert!(
            error(&format!("ARG B={}x{}\nFROM scratch\n", "${a:-".repeat(100), "}".repeat(100)))
                .message
                .starts_with("ARG `${a:-")
        );
    }

    #[test]
    fn copy_from() {
        let text = "FROM a AS build\nCOPY --chown=root --from=build /x /y\nCOPY --from=0 /x /y\n\
                    COPY --from=LATER /x /y\nCOPY --from=ext/img:1 /x /y\nADD --chmod=644 x y\nCOPY x --from=notaflag\n\
                    FROM b AS later\nARG V=2\nCOPY --from=img:$V /x /y\n";
        assert_eq!(
            refs(text),
            vec![r("a", 1, From), r("ext/img:1", 5, CopyFrom), r("b", 8, From), r("img:2", 10, CopyFrom)]
        );
        assert_eq!(error("FROM a\nCOPY --from=$X /x /y\n").message, "COPY --from uses undefined variable `X`");
        // A bare stage ARG takes the global default.
        assert_eq!(refs("ARG V=3\nFROM a\nARG V\nCOPY --from=img:${V} . .\n")[1], r("img:3", 4, CopyFrom));
    }

    #[test]
    fn mount_from() {
        let text = "FROM a AS deps\nFROM b\nRUN --network=none --mount=type=cache,target=/c,from=deps \\\n\
                    --mount=target=/d,FROM=\"ext:1\",type=bind --mount=type=bind,from=1 make\n\
                    RUN --mount=\"type=bind,from=quoted:2\" true\nRUN echo --mount=from=notaflag\nRUN --mount=type=tmpfs,target=/t true\n";
        assert_eq!(
            refs(text),
            vec![r("a", 1, From), r("b", 2, From), r("ext:1", 3, MountFrom), r("quoted:2", 5, MountFrom)]
        );
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &[
            "FROM ",
            "FROM --platform=linux/amd64 base:1 AS build",
            "COPY --from=",
            "RUN --mount=type=cache,from=",
            "ARG ",
            "A=${B:-c}",
            "$A",
            "${",
            "}",
            "# escape=`",
            "<<EOF",
            "EOF",
            "\\\n",
            "\"",
            "'",
            " AS ",
            "scratch",
        ];

        proptest! {
            #[test]
            fn never_panics_and_lines_are_real(text in crate::fuzz::text(TOKENS)) {
                let lines = text.lines().count().max(1);
                if let Ok(references) = image_references(&text) {
                    for reference in references {
                        prop_assert!(reference.line >= 1 && reference.line <= lines, "{reference:?}");
                    }
                }
            }
        }
    }
}
