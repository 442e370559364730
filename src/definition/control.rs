//! `control` files: the `Build-Depends` and `Depends` an image declares, and the `Platforms` it is built for.
//!
//! The format is Debian's deb822: paragraphs separated by blank lines, `Name: value` fields continued on lines
//! starting with a space or tab, and `#` comment lines. Hand-written, because both halves of its behaviour are
//! features: the file is read as leniently as docker-pkg's parser (python-debian) reads it, so a line that is
//! no field, a continuation before any field, or a repeated field (the last one wins) only draws a warning;
//! and, unlike docker-pkg, which uses each comma-separated item verbatim as an image name, items are parsed as
//! Debian relations: `a | b` alternatives, with version constraints `(>= 1.0)`, architecture qualifiers
//! `[amd64]`, build profiles `<!nocheck>` and `:any` stripped. A relation that cannot be read is an error.
//!
//! `Platforms` is imgraph's own field (docker-pkg ignores it): platform names separated by commas and/or
//! white space, in any paragraph. Being new, it is read strictly: a second `Platforms` field anywhere in the
//! file, an empty list or a name that is no platform is an error.

use std::path::{Path, PathBuf};

use crate::files;
use crate::platform::Platform;

/// Which control field a dependency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyField {
    BuildDepends,
    Depends,
}

/// One declared dependency: `a`, or `a | b` (alternatives, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Image short names, version constraints stripped; never empty.
    pub alternatives: Vec<String>,
    pub field: DependencyField,
    /// 1-based line of the field in the control file.
    pub line: usize,
}

/// A parsed control file: its dependencies, its platforms, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    pub dependencies: Vec<Dependency>,
    /// The `Platforms` field: normalised, in the order written, without duplicates; `None` without the field.
    pub platforms: Option<Vec<Platform>>,
    /// The 1-based line of the `Platforms` field, exactly when `platforms` is `Some`.
    pub platforms_line: Option<usize>,
    /// Lines python-debian would skip, with their 1-based number.
    pub warnings: Vec<(usize, String)>,
}

/// A control file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ControlError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses every paragraph of `path` (a regular file, within [`files::CONTROL_LIMIT`]).
pub fn read_control(path: &Path) -> Result<Control, ControlError> {
    let error = |line, message| ControlError { path: path.to_owned(), line, message };
    let bytes = files::read(path, files::CONTROL_LIMIT).map_err(|e| error(None, format!("cannot read: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        error(Some(line), "invalid UTF-8".into())
    })?;
    parse(text).map_err(|(line, message)| error(Some(line), message))
}

/// One field of a paragraph: its name, the line it starts on, and its value with continuation lines joined.
struct Field<'a> {
    name: &'a str,
    line: usize,
    value: String,
}

fn parse(text: &str) -> Result<Control, (usize, String)> {
    let mut control = Control::default();
    let mut paragraph: Vec<Field> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            end_paragraph(&mut control, &paragraph)?;
            paragraph.clear();
        } else if line.starts_with([' ', '\t']) {
            match paragraph.last_mut() {
                Some(field) => {
                    field.value.push('\n');
                    field.value.push_str(line.trim());
                }
                None => control.warnings.push((
                    number,
                    "continuation line (starting with a space or tab) before any field: skipped".into(),
                )),
            }
        } else {
            let Some((name, value)) = line.split_once(':').filter(|(name, _)| is_field_name(name)) else {
                control.warnings.push((
                    number,
                    "not a field `Name: value`, a continuation line, a `#` comment or a blank line: skipped".into(),
                ));
                continue;
            };
            if name.eq_ignore_ascii_case(PLATFORMS) {
                // Unlike docker-pkg's fields, which it reads leniently, a repeat is an error: which of two
                // platform lists was meant cannot be guessed.
                if let Some(first) = control.platforms_line.replace(number) {
                    return Err((number, format!("field `{name}` repeats the one on line {first}")));
                }
            }
            if let Some(at) = paragraph.iter().position(|f| f.name.eq_ignore_ascii_case(name)) {
                let first = paragraph.remove(at);
                control
                    .warnings
                    .push((number, format!("field `{name}` repeats the one on line {}; this one is used", first.line)));
            }
            paragraph.push(Field { name, line: number, value: value.trim().to_owned() });
        }
    }
    end_paragraph(&mut control, &paragraph)?;
    Ok(control)
}

/// The name of the field that lists platforms.
const PLATFORMS: &str = "Platforms";

/// Takes what `control` needs from a complete paragraph.
fn end_paragraph(control: &mut Control, paragraph: &[Field]) -> Result<(), (usize, String)> {
    control.dependencies.extend(paragraph_dependencies(paragraph)?);
    if let Some(field) = paragraph.iter().find(|f| f.name.eq_ignore_ascii_case(PLATFORMS)) {
        let (platforms, duplicates) = platforms(field)?;
        control.platforms = Some(platforms);
        control.warnings.extend(duplicates.into_iter().map(|message| (field.line, message)));
    }
    Ok(())
}

/// The platforms a `Platforms` field lists, and a warning for each name that repeats an earlier one.
fn platforms(field: &Field) -> Result<(Vec<Platform>, Vec<String>), (usize, String)> {
    let mut platforms: Vec<Platform> = Vec::new();
    let mut warnings = Vec::new();
    let mut written: Vec<&str> = Vec::new();
    for name in field.value.split(|c: char| c == ',' || c.is_whitespace()).filter(|name| !name.is_empty()) {
        let platform = Platform::parse(name).map_err(|why| (field.line, format!("{}: {why}", field.name)))?;
        match platforms.iter().position(|p| *p == platform) {
            Some(at) => {
                warnings.push(format!("{}: `{name}` is {platform}, as `{}` is; listed once", field.name, written[at]))
            }
            None => {
                platforms.push(platform);
                written.push(name);
            }
        }
    }
    if platforms.is_empty() {
        return Err((field.line, format!("{}: no platform is listed", field.name)));
    }
    Ok((platforms, warnings))
}

/// deb822 field names: printable ASCII except `:`, not starting with `#` or `-`.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(['#', '-']) && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// `Build-Depends` then `Depends`, as docker-pkg reads them.
fn paragraph_dependencies(paragraph: &[Field]) -> Result<Vec<Dependency>, (usize, String)> {
    let mut dependencies = Vec::new();
    for (name, kind) in [("Build-Depends", DependencyField::BuildDepends), ("Depends", DependencyField::Depends)] {
        let Some(field) = paragraph.iter().find(|f| f.name.eq_ignore_ascii_case(name)) else { continue };
        for item in field.value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let alternatives = item
                .split('|')
                .map(|alternative| package_name(alternative.trim()))
                .collect::<Result<_, _>>()
                .map_err(|why| (field.line, format!("{}: `{item}`: {why}", field.name)))?;
            dependencies.push(Dependency { alternatives, field: kind, line: field.line });
        }
    }
    Ok(dependencies)
}

/// The package name of one relation, e.g. `foo` from `foo:any (>= 1.0) [amd64] <!nocheck>`.
fn package_name(relation: &str) -> Result<String, String> {
    if relation.is_empty() {
        return Err("empty alternative".into());
    }
    let end = relation.find(|c: char| c.is_whitespace() || "([<".contains(c)).unwrap_or(relation.len());
    let (name, mut rest) = relation.split_at(end);
    // Multiarch qualifier: `foo:any`, `foo:native`.
    let name = name.split_once(':').map_or(name, |(name, _)| name);
    if name.is_empty() {
        return Err("no package name".into());
    }
    // What follows may only be bracketed groups: `(...)`, `[...]`, `<...>`.
    loop {
        rest = rest.trim_start();
        let Some(open) = rest.chars().next() else { break };
        let close = match open {
            '(' => ')',
            '[' => ']',
            '<' => '>',
            _ => return Err(format!("unexpected `{rest}` after `{name}`")),
        };
        let Some(end) = rest.find(close) else {
            return Err(format!("`{open}` without a closing `{close}`"));
        };
        rest = &rest[end + 1..];
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn parse_text(text: &str) -> Result<Vec<Dependency>, (Option<usize>, String)> {
        parse_with_warnings(text).map(|c| c.dependencies)
    }

    fn parse_with_warnings(text: &str) -> Result<Control, (Option<usize>, String)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        fs::write(&path, text).unwrap();
        read_control(&path).map_err(|e| (e.line, e.message))
    }

    fn dependency(alternatives: &[&str], field: DependencyField, line: usize) -> Dependency {
        Dependency { alternatives: alternatives.iter().map(|&a| a.to_owned()).collect(), field, line }
    }

    #[test]
    fn real_layout() {
        let text = "Package: php8.3-fpm\nBuild-Depends: openjdk-8-jdk,golang1.19\nDepends: php8.3-cli\n\
                    Description: PHP-FPM\n An image used to build images\n with two lines\n";
        assert_eq!(
            parse_text(text).unwrap(),
            vec![
                dependency(&["openjdk-8-jdk"], DependencyField::BuildDepends, 2),
                dependency(&["golang1.19"], DependencyField::BuildDepends, 2),
                dependency(&["php8.3-cli"], DependencyField::Depends, 3),
            ]
        );
        assert_eq!(parse_text("Package: foo-bar\n").unwrap(), vec![]);
        assert_eq!(parse_text("").unwrap(), vec![]);
    }

    #[test]
    fn build_depends_before_depends_in_every_paragraph() {
        let text = "# a comment\nSource: x\ndepends: a\nBUILD-DEPENDS: b\n\n\t\nPackage: y\n# inner comment\n\
                    Depends: c,\n d | e:any (>= 1.0) [amd64] <!nocheck>,\n   ,\n";
        assert_eq!(
            parse_text(text).unwrap(),
            vec![
                dependency(&["b"], DependencyField::BuildDepends, 4),
                dependency(&["a"], DependencyField::Depends, 3),
                dependency(&["c"], DependencyField::Depends, 9),
                dependency(&["d", "e"], DependencyField::Depends, 9),
            ]
        );
    }

    #[test]
    fn constraints_are_stripped() {
        let text =
            "Depends: foo (>= 1.0), bar | baz,\r\nBuild-Depends: qux(<<2)[!i386]<stage1 !nocheck> | quux:native\r\n";
        assert_eq!(
            parse_text(text).unwrap(),
            vec![
                dependency(&["qux", "quux"], DependencyField::BuildDepends, 2),
                dependency(&["foo"], DependencyField::Depends, 1),
                dependency(&["bar", "baz"], DependencyField::Depends, 1),
            ]
        );
    }

    #[test]
    fn errors() {
        let error = |text: &str| parse_text(text).unwrap_err();
        assert_eq!(error("Package: x\nDepends: a | | b\n"), (Some(2), "Depends: `a | | b`: empty alternative".into()));
        assert!(error("Depends: a |\n").1.contains("empty alternative"));
        assert!(error("Depends: (>= 1.0)\n").1.contains("no package name"));
        assert!(error("Depends: foo bar\n").1.contains("unexpected `bar` after `foo`"));
        assert!(error("Depends: foo (>= 1.0\n").1.contains("without a closing"));
        assert_eq!(parse_text("Package: x\nDescription: caf\u{e9}\n").unwrap(), vec![]);
    }

    #[test]
    fn what_python_debian_skips_is_a_warning() {
        let warnings = |text: &str| {
            let control = parse_with_warnings(text).unwrap();
            control.warnings.into_iter().map(|(line, message)| format!("{line}: {message}")).collect::<Vec<_>>()
        };
        assert!(warnings(" leading continuation\n")[0].starts_with("1: continuation line"));
        assert!(warnings("Package: x\n\n continuation after blank\n")[0].starts_with("3: continuation line"));
        assert!(warnings("Package: x\nnot a field\n")[0].starts_with("2: not a field"));
        assert!(warnings(": value\n")[0].starts_with("1: not a field"));
        assert_eq!(
            warnings("Depends: a\ndepends: b\n"),
            ["2: field `depends` repeats the one on line 1; this one is used"]
        );
        assert_eq!(
            parse_text("Depends: a\ndepends: b\n").unwrap(),
            vec![dependency(&["b"], DependencyField::Depends, 2)]
        );
    }

    #[test]
    fn platforms_in_any_paragraph_normalised() {
        let platforms = |text: &str| {
            let control = parse_with_warnings(text).unwrap();
            let names = control.platforms.map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>());
            (names, control.platforms_line)
        };
        let all = |names: &[&str]| Some(names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>());
        assert_eq!(
            platforms(
                "Package: x
Depends: a
"
            ),
            (None, None)
        );
        assert_eq!(
            platforms(
                "Package: x
platforms: linux/amd64, arm64
"
            ),
            (all(&["linux/amd64", "linux/arm64"]), Some(2))
        );
        assert_eq!(
            platforms(
                "Package: x

# second
PLATFORMS:
 armhf,linux/aarch64	x86_64 ,
  linux/s390x
"
            ),
            (all(&["linux/arm/v7", "linux/arm64", "linux/amd64", "linux/s390x"]), Some(4))
        );
        let control = parse_with_warnings(
            "Platforms: linux/arm64 linux/amd64
Depends: a
",
        )
        .unwrap();
        assert_eq!(control.dependencies, vec![dependency(&["a"], DependencyField::Depends, 2)]);
    }

    #[test]
    fn platforms_that_repeat_after_normalisation_are_listed_once() {
        let control = parse_with_warnings(
            "Package: x
Platforms: arm64, linux/amd64, linux/aarch64 x86_64
",
        )
        .unwrap();
        let names: Vec<String> = control.platforms.unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["linux/arm64", "linux/amd64"]);
        assert_eq!(
            control.warnings,
            [
                (2, "Platforms: `linux/aarch64` is linux/arm64, as `arm64` is; listed once".to_owned()),
                (2, "Platforms: `x86_64` is linux/amd64, as `linux/amd64` is; listed once".to_owned()),
            ]
        );
    }

    #[test]
    fn platforms_errors_name_the_line() {
        let error = |text: &str| parse_with_warnings(text).unwrap_err();
        assert_eq!(
            error(
                "Package: x
Platforms: linux/amd64

Package: y
platforms: linux/arm64
"
            ),
            (Some(5), "field `platforms` repeats the one on line 2".into())
        );
        assert_eq!(
            error(
                "Platforms: linux/amd64
Platforms: linux/amd64
"
            ),
            (Some(2), "field `Platforms` repeats the one on line 1".into())
        );
        assert_eq!(
            error(
                "Package: x
Platforms:
"
            ),
            (Some(2), "Platforms: no platform is listed".into())
        );
        assert_eq!(
            error(
                "Package: x
Platforms: , ,
 ,
"
            )
            .1,
            "Platforms: no platform is listed"
        );
        let (line, message) = error(
            "Package: x
Platforms: linux/amd64,
 linux/arm64/v8/x
",
        );
        assert_eq!(line, Some(2));
        assert!(message.starts_with("Platforms: `linux/arm64/v8/x` is not a valid platform: it has 4"), "{message}");
        assert!(
            error(
                "Platforms: linux
"
            )
            .1
            .contains("`linux` is an OS without an architecture")
        );
    }

    #[test]
    fn unreadable_and_invalid_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        fs::write(&path, b"Package: x\nDepends: \xff\n").unwrap();
        let err = read_control(&path).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (Some(2), "invalid UTF-8"));
        let err = read_control(&dir.path().join("missing")).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (None, "cannot read: no such file"));
        let huge = dir.path().join("huge");
        fs::write(&huge, format!("Depends: {}\n", "a,".repeat(6 << 20))).unwrap();
        assert!(read_control(&huge).unwrap_err().message.contains("larger than the limit of 1 MiB"));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &[
            "Package: php8.3-fpm",
            "Depends: ",
            "Build-Depends: ",
            "Platforms: ",
            "linux/amd64",
            "arm64",
            "foo (>= 1.0)",
            "bar | baz:any",
            "qux [amd64] <!nocheck>",
            ",",
            "|",
            "(",
            "[",
            "<",
            ":",
            "#",
            "\n ",
        ];

        proptest! {
            #[test]
            fn never_panics_and_every_dependency_is_named(text in crate::fuzz::text(TOKENS)) {
                if let Ok(control) = parse(&text) {
                    prop_assert_eq!(control.platforms.is_some(), control.platforms_line.is_some());
                    prop_assert!(control.platforms.is_none_or(|p| !p.is_empty()));
                    for dependency in &control.dependencies {
                        prop_assert!(!dependency.alternatives.is_empty());
                        prop_assert!(dependency.alternatives.iter().all(|a| !a.is_empty()));
                    }
                }
            }
        }
    }
}
