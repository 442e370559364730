//! A mutation fuzzer over the production-images definitions: imgraph must never panic, die of a signal, exit
//! outside 0..=4, run over 20 s or use over 500 MB, whatever the tree holds.
//!
//! Each case copies the corpus's `images/` tree and `config.yaml` into a temp dir, applies 1 to 3 seeded
//! mutations and runs, all at once, `graph`, `check`, `render` (touched images and a random one), `update
//! --dry-run`, and `status`/`build` against a Docker socket and a registry nobody listens on. A failing run is attributed to
//! one mutation by replaying each mutation alone, then grouped with the failures of the same kind, command and
//! mutation kind (panics by their location), saved, and listed in the test's failure message.
//!
//! Verdicts: a panic message, a signal, or an exit code outside 0..=4 fails. So does a peak RSS (polled
//! `VmHWM`) over 500 MB, and a hang: past 20 s, a run that used no CPU for a second (blocked, e.g. on a FIFO),
//! that used 20 s of CPU, or that still runs at [`WALL_CAP`]. Counting CPU rather than wall-clock time keeps a
//! run that is merely starved (the case's commands run at once, beside other tests) from passing for a hang.
//!
//! A seed gives the same case on every machine, for a given version of this file.
//!
//! Environment:
//! * `IMGRAPH_FUZZ_CASES`: number of cases (default [`DEFAULT_CASES`], about a minute with a debug binary);
//! * `IMGRAPH_FUZZ_SEED`: the run's seed, decimal or `0x` hex (default: the day number, so CI varies daily);
//! * `IMGRAPH_FUZZ_OUT`: where failing cases are saved (default: a directory under the temp dir, kept);
//! * `IMGRAPH_FUZZ_BUDGET`: seconds after which no new case starts once something failed (default
//!   [`DEFAULT_BUDGET_SECS`]; 0: no limit), since every hang costs 20 s;
//! * `IMGRAPH_FUZZ_REPLAY=SEED[/I]`: runs only the case of that seed (only its mutation I), keeps its tree;
//! * `IMGRAPH_FUZZ_CORPUS`: a directory with `images/` and `config.yaml` to use instead of production-images.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::harness::{IMGRAPH, shared_dir};

/// The acceptance limits: a run over either is a failure.
const TIMEOUT: Duration = Duration::from_secs(20);
const MEMORY_LIMIT_KB: u64 = 500 * 1024;
/// A run past [`TIMEOUT`] that still uses CPU may only be starved: it hangs once it has used [`TIMEOUT`] of
/// CPU, or when it still runs at this wall-clock time.
const WALL_CAP: Duration = Duration::from_secs(60);
/// An address-space cap under the RSS polling, in case a run allocates faster than we poll: far above what
/// a run needs (they work under 400 MB of address space), far below the machine.
const ADDRESS_SPACE_CAP: u64 = 4 << 30;
const POLL: Duration = Duration::from_millis(10);
/// Output kept per stream; the rest is read and dropped (a runaway render may print gigabytes).
const CAPTURE_LIMIT: usize = 64 * 1024;
const DEFAULT_CASES: usize = 60;
const DEFAULT_BUDGET_SECS: u64 = 180;
const DOCKER_HOST: &str = "unix:///nonexistent.sock";
/// A registry address nothing listens on (the discard port).
const CLOSED_REGISTRY: &str = "127.0.0.1:9";
/// Sizes of the "huge" mutations.
const HUGE: usize = 12 << 20;
const LONG_LINE: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------------------
// Randomness

/// SplitMix64: a seedable PRNG of our own, so that a seed means the same case on every machine and version.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n`; `n` must not be 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut roll = self.below(total as usize) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if roll < w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }
}

/// SplitMix64's finalizer: spreads a counter over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of case `index` of a run seeded `seed`.
fn case_seed(seed: u64, index: usize) -> u64 {
    mix(seed ^ mix(index as u64 + 1))
}

// ---------------------------------------------------------------------------------------------------------
// The pristine corpus

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Template,
    Changelog,
    Control,
    DockerIgnore,
    Config,
    Other,
}

impl FileKind {
    fn of(name: &OsStr) -> Self {
        match name.to_str() {
            Some("Dockerfile.template") => Self::Template,
            Some("changelog") => Self::Changelog,
            Some("control") => Self::Control,
            Some(".dockerignore") => Self::DockerIgnore,
            _ => Self::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Template => "template",
            Self::Changelog => "changelog",
            Self::Control => "control",
            Self::DockerIgnore => ".dockerignore",
            Self::Config => "config.yaml",
            Self::Other => "other file",
        }
    }
}

#[derive(Debug)]
struct ImageInfo {
    /// Relative to the tree root, e.g. `images/nodejs18`.
    dir: PathBuf,
    name: String,
}

/// What mutations choose from: the corpus as it is on disk, never modified.
#[derive(Debug)]
struct Corpus {
    /// The corpus directory, holding `images/` and `config.yaml`.
    source: PathBuf,
    /// Every non-directory entry, relative to the tree root (`images/...`, `config.yaml`).
    files: Vec<(PathBuf, FileKind)>,
    images: Vec<ImageInfo>,
    /// Image name -> the tree images it is built from (`control` and `"x" | image_tag`), to make cycles.
    parents: BTreeMap<String, Vec<String>>,
}

impl Corpus {
    fn load(source: &Path) -> Self {
        let mut files = vec![(PathBuf::from("config.yaml"), FileKind::Config)];
        for entry in walkdir::WalkDir::new(source.join("images")).follow_links(false).sort_by_file_name() {
            let entry = entry.expect("walk the corpus");
            if !entry.file_type().is_dir() {
                let rel = entry.path().strip_prefix(source).expect("inside the corpus").to_owned();
                files.push((rel, FileKind::of(entry.file_name())));
            }
        }
        let mut images = Vec::new();
        for (rel, kind) in &files {
            let dir = rel.parent().expect("a parent");
            if *kind == FileKind::Changelog && files.iter().any(|(f, _)| f == &dir.join("Dockerfile.template")) {
                let text = fs::read_to_string(source.join(rel)).unwrap_or_default();
                let name = text.split(" (").next().unwrap_or_default().trim().to_owned();
                images.push(ImageInfo { dir: dir.to_owned(), name });
            }
        }
        let names: BTreeSet<&str> = images.iter().map(|i| i.name.as_str()).collect();
        let image_tag = regex::Regex::new(r#"["']([A-Za-z0-9][A-Za-z0-9._+-]*)["']\s*\|\s*image_tag"#).unwrap();
        let mut parents = BTreeMap::new();
        for image in &images {
            let control = fs::read_to_string(source.join(&image.dir).join("control")).unwrap_or_default();
            let template = fs::read_to_string(source.join(&image.dir).join("Dockerfile.template")).unwrap_or_default();
            let mut found: Vec<String> = control_dependencies(&control);
            found.extend(image_tag.captures_iter(&template).map(|c| c[1].to_owned()));
            found.retain(|n| names.contains(n.as_str()) && *n != image.name);
            found.sort();
            found.dedup();
            if !found.is_empty() {
                parents.insert(image.name.clone(), found);
            }
        }
        Self { source: source.to_owned(), files, images, parents }
    }

    fn files_of(&self, kind: FileKind) -> Vec<&PathBuf> {
        self.files.iter().filter(|(_, k)| *k == kind).map(|(p, _)| p).collect()
    }

    /// The image whose directory holds `rel` (the deepest one).
    fn image_of(&self, rel: &Path) -> Option<&ImageInfo> {
        self.images.iter().filter(|i| rel.starts_with(&i.dir)).max_by_key(|i| i.dir.components().count())
    }

    /// A fresh copy of the corpus in `tree`. The registry becomes a closed loopback port: `status` and `build`
    /// then fail to reach it at once, wherever the test runs, instead of waiting on DNS for a public name.
    fn copy_to(&self, tree: &Path) {
        copy_tree(&self.source.join("images"), &tree.join("images")).expect("copy images/");
        let config = fs::read_to_string(self.source.join("config.yaml")).expect("read config.yaml");
        let config = config.replace("docker-registry.wikimedia.org", CLOSED_REGISTRY);
        fs::write(tree.join("config.yaml"), config).expect("write config.yaml");
    }
}

/// The names a control file's `Depends`/`Build-Depends` fields list (a rough reading: first alternative).
fn control_dependencies(control: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in control.lines() {
        let Some((field, value)) = line.split_once(':') else { continue };
        if !matches!(field.to_ascii_lowercase().as_str(), "depends" | "build-depends") {
            continue;
        }
        for item in value.split(',') {
            let name: String =
                item.trim().chars().take_while(|c| !c.is_whitespace() && !"([<:|".contains(*c)).collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// Copies a directory, keeping symlinks as symlinks (they may point anywhere: never follow them).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            symlink(fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Mutations

/// A mutation as applied: enough to explain it, to group failures by it and to redo it.
#[derive(Debug, Clone)]
struct Applied {
    seed: u64,
    /// What was done, concretely.
    description: String,
    /// What kind of thing was done, without the random details: failures are grouped by it.
    signature: String,
    /// Paths (relative to the tree) created, changed or removed.
    touched: Vec<PathBuf>,
    /// The image whose directory was touched, if any: the case renders and updates it.
    image: Option<String>,
}

/// Texts inserted anywhere (label, text).
const SPECIALS: &[(&str, &str)] = &[
    ("smart quotes", "‘’"),
    ("double smart quotes", "“x”"),
    ("emoji", "😀"),
    ("é", "é"),
    ("backslash", "\\"),
    ("backslash + smart quote", "\\‘"),
    ("`{{`", "{{"),
    ("`{%`", "{%"),
    ("`}}`", "}}"),
    ("`%}`", "%}"),
    ("`{#`", "{#"),
    ("NUL", "\0"),
    ("CR", "\r"),
    ("CRLF", "\r\n"),
    ("BOM", "\u{feff}"),
    ("zero-width space", "\u{200b}"),
    ("U+10FFFF", "\u{10ffff}"),
    ("combining accent", "e\u{301}"),
    ("line continuation", "\\\n"),
    ("tab", "\t"),
    ("DEL", "\x7f"),
    ("`{% raw %}`", "{% raw %}"),
    ("`{% endraw %}`", "{% endraw %}"),
    ("expression with smart quotes", "{{ ‘x’ }}"),
    ("escaped smart quote in a string", "{{ '\\‘' }}"),
];

/// Texts inserted inside an existing `{{ }}` or `{% %}` tag (label, text).
const IN_TAG: &[(&str, &str)] = &[
    ("smart quote", "‘"),
    ("emoji", "😀"),
    ("é", "é"),
    ("backslash", "\\"),
    ("backslash + é", "\\é"),
    ("backslash + smart quote", "\\‘"),
    ("quote", "'"),
    ("double quote", "\""),
    ("open parenthesis", "("),
    ("open bracket", "["),
    ("open brace", "{"),
    ("close brace", "}"),
    ("line continuation", "\\\n"),
    ("string with a smart quote", " '‘' "),
    ("string with an escaped é", " '\\é' "),
    ("Python escapes", " '\\N{BULLET}\\u12\\x4\\777\\a\\v\\/' "),
    ("NUL", "\0"),
    ("newline", "\n"),
];

/// Jinja constructs inserted as a line of a template (label, text).
const JINJA: &[(&str, &str)] = &[
    ("nested 100000x100000 loops", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
    ("range(1000000000)", "{% for i in range(1000000000) %}x{% endfor %}"),
    ("'x' * 1000000000", "{{ 'x' * 1000000000 }}"),
    (
        "2^40 replace chain",
        "{{ 'x'|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx')|replace('x','xx') }}",
    ),
    ("recursive macro", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"),
    ("recursive include", "{% include 'Dockerfile.template' %}"),
    ("self extends", "{% extends 'Dockerfile.template' %}"),
    ("self import", "{% import 'Dockerfile.template' as t %}"),
    ("include of ../", "{% include '../Dockerfile.template' %}"),
    ("include of /etc/passwd", "{% include '/etc/passwd' %}"),
    ("include of a missing file", "{% include 'no-such-file' %}"),
    ("huge integer", "{{ 99999999999999999999999999999999999999999999 }}"),
    (
        "integer overflow",
        "{{ 9223372036854775807 + 1 }}{{ -9223372036854775807 - 10 }}{{ 170141183460469231731687303715884105727 * 2 }}",
    ),
    (
        "i128::MIN // -1",
        "{{ (-170141183460469231731687303715884105727 - 1) // -1 }}{{ (-9223372036854775807 - 1) % -1 }}",
    ),
    ("huge power", "{{ 2 ** 100000 }}{{ 10 ** 10 ** 10 }}"),
    ("division by zero", "{{ 1 // 0 }}{{ 1 % 0 }}{{ 1 / 0 }}"),
    (
        "odd filter inputs",
        "{{ none | image_tag }}{{ 1 | upstream_version }}{{ '' | uid }}{{ [] | add_user }}{{ {} | apt_install }}{{ 1 | apt_remove }}",
    ),
    (
        "empty filter inputs",
        "{{ '' | image_tag }}{{ ':' | upstream_version }}{{ '' | add_user }}{{ '' | apt_install }}{{ '' | apt_remove }}",
    ),
    ("unknown filter", "{{ registry | no_such_filter }}"),
    ("unclosed raw", "{% raw %}"),
    ("unclosed comment", "{#"),
    ("unclosed string after a backslash", "{{ '\\"),
    ("string escape then é", "{{ '\\é' }}"),
    ("do statement", "{% do registry.append(1) %}"),
    ("big loop over the config", "{% for i in range(100000) %}{{ registry }}{% endfor %}"),
    ("set block", "{% set x %}{{ x }}{% endset %}{{ x }}"),
    ("slice with a huge step", "{{ 'abc'[::9223372036854775807] }}{{ 'abc'[-9223372036854775807:] }}"),
    ("format with huge width", "{{ '%999999999d' % 1 }}{{ 'x'|center(1000000000) }}{{ 'x'|indent(1000000000) }}"),
    ("wordwrap and truncate", "{{ 'x'|truncate(-1) }}{{ 'x y'|wordwrap(0) }}"),
];

/// Dockerfile lines inserted into a template (label, text; `deep:` and `long:` are generated), for the
/// parser of `FROM`, `COPY --from`, `RUN --mount` and `ARG` that reads the rendered Dockerfile.
const DOCKERFILE: &[(&str, &str)] = &[
    ("deeply nested ${a:-...}", "deep:"),
    ("ARG doubling chain", "doubling:"),
    ("FROM without image", "FROM"),
    ("FROM with flags only", "FROM --platform=linux/amd64"),
    ("FROM with too many words", "FROM a AS b c"),
    ("stage named like an image", "FROM scratch AS docker-registry.wikimedia.org/bookworm:latest"),
    ("COPY --from an undefined variable", "COPY --from=$NOPE / /"),
    ("COPY --from nothing", "COPY --from= / /"),
    ("COPY --from a huge stage index", "COPY --from=99999999999999999999999 / /"),
    ("RUN --mount with odd quotes", "RUN --mount=\"type=bind,from='x\" true"),
    ("unterminated heredoc", "RUN <<EOF"),
    ("escape directive", "# escape=`"),
    ("unterminated ${", "FROM ${a"),
    ("100 kB FROM", "longfrom:"),
    ("non-ASCII FROM", "FROM é😀:‘tag’"),
    ("100000 continuation lines", "continued:"),
    ("$ at the end", "FROM a$"),
    ("odd ${} forms", "FROM ${:-x}${a:?}${a:=b}${#a}${a%b}${}"),
    ("huge USER", "USER 99999999999999999999999999:x"),
    ("empty USER", "USER "),
    ("escape at the end of the file", "RUN \\"),
    ("ARG with odd names", "ARG =x é=y ${a}=z"),
];

/// Files included by an inserted `{% include 'fuzz-include' %}` (label).
const INCLUDED: &[&str] = &[
    "FIFO",
    "symlink to /dev/zero",
    "symlink to /dev/urandom",
    "directory",
    "dangling symlink",
    "symlink to itself",
    "invalid UTF-8",
    "12 MB file",
    "file including itself",
    "file including the template",
];

const VERSIONS: &[(&str, &str)] = &[
    ("empty", ""),
    ("epoch only", "1:"),
    ("epoch", "2:1.0-1"),
    ("huge number", "99999999999999999999999999999"),
    ("huge -sN", "1.0-s99999999999999999999"),
    ("u64::MAX -sN", "1.0-s18446744073709551615"),
    ("u32::MAX -sN", "1.0-s4294967295"),
    ("tilde", "0.0.1~alpha1"),
    ("plus", "1.0+deb1"),
    ("non-ASCII", "1.0-é😀"),
    ("space", "1.0 2.0"),
    ("colons", "a:b:c"),
    ("dash", "-"),
    ("empty -s", "1.0-s"),
    ("upper case", "V1.0"),
    ("leading dot", ".1"),
    ("trailing dash", "1.0-"),
    ("backslash", "1.0\\"),
    ("jinja", "{{ 1 }}"),
    ("many -sN", "long:-s1"),
    ("100 kB", "long:1."),
];

const NAMES: &[(&str, &str)] = &[
    ("empty", ""),
    ("upper case", "FooBar"),
    ("300 chars", "long300:a"),
    ("100 kB", "long:a"),
    ("another image's name", "duplicate"),
    ("parent path", "../x"),
    ("space", "a b"),
    ("non-ASCII", "é😀"),
    ("slash", "a/b"),
    ("colon", "a:b"),
    ("leading dash", "-x"),
    ("jinja", "{{x}}"),
    ("glob", "*"),
];

const DATES: &[(&str, &str)] = &[
    ("Feb 31", "Mon, 31 Feb 2026 10:00:00 +0000"),
    ("year 99999", "Mon, 23 Nov 99999 10:00:00 +0000"),
    ("year 0", "Mon, 23 Nov 0000 10:00:00 +0000"),
    ("negative year", "Mon, 23 Nov -2026 10:00:00 +0000"),
    ("year past u64", "Mon, 23 Nov 18446744073709551616 10:00:00 +0000"),
    ("offset +9999", "Mon, 23 Nov 2026 10:00:00 +9999"),
    ("offset -2400", "Mon, 23 Nov 2026 10:00:00 -2400"),
    ("20-digit offset", "Mon, 23 Nov 2026 10:00:00 +00000000000000000000"),
    ("bad fields", "Foo, 99 Xyz 2026 25:61:61 +0000"),
    ("huge hour", "Mon, 23 Nov 2026 99999999999999999999:00:00 +0000"),
    ("leap second", "Wed, 31 Dec 2025 23:59:60 +0000"),
    ("no zone", "Mon, 23 Nov 2026 10:00:00"),
    ("empty", ""),
    ("non-ASCII", "Mon, 23 Nov 2026 10:00:00 +0000 😀"),
    ("max i64 seconds", "Sun, 4 Dec 292277026596 15:30:07 +0000"),
];

const RELATIONS: &[(&str, &str)] = &[
    ("unclosed version", "Depends: {dep} (>= "),
    ("empty items", "Depends: , | ,, |"),
    ("unclosed arch", "Build-Depends: {dep} [amd64"),
    ("unclosed profile", "Depends: {dep} <!nocheck"),
    ("substitution variable", "Depends: ${misc:Depends}, {dep}"),
    ("alternatives", "Depends: no-such-image | {dep}"),
    ("multiarch", "Depends: {dep}:any:any"),
    ("non-ASCII", "Depends: é😀, {dep}"),
    ("field without colon value", "Depends:"),
    ("weird field name", "Dé pends: {dep}"),
];

/// `config.yaml` keys set to odd values (key, label, YAML value; `long:` makes a 100 kB value).
const CONFIG_VALUES: &[(&str, &str, &str)] = &[
    ("registry", "a list", "[1, 2]"),
    ("registry", "a mapping", "{a: b}"),
    ("registry", "empty", "''"),
    ("registry", "null", "~"),
    ("registry", "100 kB", "long:r"),
    ("registry", "bad port", "'localhost:99999'"),
    ("registry", "colons", "'::::'"),
    ("registry", "non-ASCII", "'é😀'"),
    ("registry", "jinja", "'{{ registry }}'"),
    ("namespace", "parent path", "'../..'"),
    ("namespace", "space", "'A B'"),
    ("namespace", "a list", "[x]"),
    ("namespace", "100 kB", "long:n"),
    ("scan_workers", "0", "0"),
    ("scan_workers", "-1", "-1"),
    ("scan_workers", "1.5", "1.5"),
    ("scan_workers", "a string", "many"),
    ("scan_workers", "2^64", "18446744073709551616"),
    ("scan_workers", "100000", "100000"),
    ("scan_workers", "usize::MAX", "18446744073709551615"),
    ("base_images", "a string", "notalist"),
    ("base_images", "[null]", "[~]"),
    ("base_images", "numbers", "[1, 2]"),
    ("base_images", "jinja", "['{{']"),
    ("base_images", "100 kB item", "[long:b]"),
    ("known_uid_mappings", "negative", "{x: -1}"),
    ("known_uid_mappings", "float", "{x: 1e30}"),
    ("known_uid_mappings", "2^64", "{x: 18446744073709551616}"),
    ("known_uid_mappings", "a list", "[]"),
    ("known_uid_mappings", "empty name", "{'': 0}"),
    ("force_numeric_user", "a string", "'yes'"),
    ("force_numeric_user", "true", "true"),
    ("container_limits", "a mapping", "{memory: 1g}"),
    ("container_limits", "a string", "'memory=1g'"),
    ("update_id", "empty", "''"),
    ("update_id", "dot", "'s.s'"),
    ("update_id", "a list", "[]"),
    ("update_id", "newline", "\"\\n\""),
    ("update_id", "non-ASCII", "'é'"),
    ("distribution", "100 kB", "long:d"),
    ("http_proxy", "non-ASCII", "'http://é'"),
    ("http_proxy", "a list", "[1]"),
    ("apt_options", "a mapping", "{a: b}"),
    ("publish_tags", "empty tag", "['']"),
    ("publish_tags", "a string", "latest"),
    ("log_dir", "a list", "[1]"),
    ("verify_args", "nested", "[1, [2]]"),
    ("ca_bundle", "/dev/zero", "/dev/zero"),
    ("insecure_registries", "a string", "x"),
    ("fallback_author", "100 kB", "long:a"),
    ("fuzz_unknown", "nested unknown key", "{a: [1, {b: 2}]}"),
];

const BAD_YAML: &[(&str, &str)] = &[
    ("unclosed flow", "key: [unclosed"),
    ("unclosed quote", "key: 'unclosed"),
    ("tab indentation", "key:\n\t- tab"),
    ("colons", ": : :"),
    ("undefined alias", "key: *undefined"),
    ("complex key", "? [complex, key]\n: value"),
    ("bad binary", "key: !!binary notbase64!"),
    ("python tag", "key: !!python/object:os.system 'x'"),
    ("self-referencing anchor", "key: &a [*a]"),
    ("merge of nothing", "<<: *nothing"),
    ("lone surrogate", "key: \"\\uD800\""),
    ("BOM mid-file", "\u{feff}key: bom"),
    ("YAML 9.9 directive", "%YAML 9.9\n---\nkey: v"),
    ("second document", "---\nsecond: doc"),
    ("jinja", "{{ registry }}: {% x %}"),
];

const DOCKERIGNORE: &[&str] = &[
    "[",
    "**/**/**/**/**",
    "!",
    "\\",
    "!**",
    "/",
    "../../..",
    "*/*/*/*/*/*/*/*/*/*/*/*",
    "[a-",
    "{a,b",
    "\0",
    "é😀",
    "# comment",
    "   ",
    "Dockerfile",
    ".dockerignore",
    "**",
    "!Dockerfile.template",
];

/// How an entry of the tree is replaced (label).
const REPLACEMENTS: &[&str] = &[
    "symlink to /dev/zero",
    "symlink to /dev/urandom",
    "symlink to /etc/passwd",
    "dangling symlink",
    "symlink to itself",
    "loop of two symlinks",
    "symlink to its directory",
    "symlink to /",
    "FIFO",
    "directory",
    "removed",
    "empty file",
];

/// Expands the `long:` and `long300:` markers of the tables above.
fn expand(value: &str) -> String {
    if let Some(unit) = value.strip_prefix("long300:") {
        unit.repeat(300)
    } else if let Some(unit) = value.strip_prefix("long:") {
        unit.repeat(100_000 / unit.len().max(1))
    } else {
        value.to_owned()
    }
}

/// Applies one mutation, chosen by `seed`, to the tree at `tree`.
fn mutate(corpus: &Corpus, tree: &Path, seed: u64) -> Applied {
    let mut m = Mutator { corpus, tree, rng: Rng(seed), touched: Vec::new() };
    let (description, signature) = match m.rng.weighted(&[18, 30, 10, 8, 6, 14, 6, 2, 6]) {
        0 => m.content(),
        1 => m.template(),
        2 => m.changelog(),
        3 => m.control(),
        4 => m.config(),
        5 => m.replace(),
        6 => m.huge(),
        7 => m.dockerignore(),
        _ => m.structure(),
    };
    let image = m.touched.iter().find_map(|t| corpus.image_of(t)).map(|i| i.name.clone());
    // Sizes and depths vary from case to case; what they stand for does not.
    let signature = regex::Regex::new("[0-9]+").unwrap().replace_all(&signature, "N").into_owned();
    Applied { seed, description, signature, touched: m.touched, image }
}

struct Mutator<'a> {
    corpus: &'a Corpus,
    tree: &'a Path,
    rng: Rng,
    touched: Vec<PathBuf>,
}

type Done = (String, String);

impl<'a> Mutator<'a> {
    fn path(&self, rel: &Path) -> PathBuf {
        self.tree.join(rel)
    }

    fn touch(&mut self, rel: &Path) -> PathBuf {
        self.touched.push(rel.to_owned());
        self.path(rel)
    }

    /// Touches `rel` and removes whatever is there, for a mutation that creates it anew.
    fn fresh(&mut self, rel: &Path) -> std::io::Result<PathBuf> {
        let path = self.touch(rel);
        remove_any(&path)?;
        Ok(path)
    }

    /// A file of the corpus, its kind chosen by how much imgraph reads it.
    fn pick_file(&mut self) -> (PathBuf, FileKind) {
        const KINDS: [(FileKind, u32); 6] = [
            (FileKind::Template, 35),
            (FileKind::Changelog, 20),
            (FileKind::Control, 15),
            (FileKind::Config, 5),
            (FileKind::Other, 10),
            (FileKind::DockerIgnore, 8),
        ];
        let kind = KINDS[self.rng.weighted(&KINDS.map(|(_, w)| w))].0;
        let files = self.corpus.files_of(kind);
        if files.is_empty() {
            return self.corpus.files[self.rng.below(self.corpus.files.len())].clone();
        }
        ((*self.rng.pick(&files)).clone(), kind)
    }

    fn pick_image(&mut self) -> &'a ImageInfo {
        let corpus = self.corpus;
        &corpus.images[self.rng.below(corpus.images.len())]
    }

    /// Rewrites a file through `edit`; a file that is not (or no longer) a regular file is left alone.
    fn edit_file(&mut self, rel: &Path, kind: FileKind, edit: impl FnOnce(&mut Rng, &mut Vec<u8>) -> Done) -> Done {
        let path = self.touch(rel);
        match read_regular(&path) {
            Ok(mut bytes) => {
                let (what, signature) = edit(&mut self.rng, &mut bytes);
                if let Err(e) = write_regular(&path, &bytes) {
                    return (format!("{}: cannot be written ({e})", rel.display()), "no-op".into());
                }
                (format!("{}: {what}", rel.display()), format!("{signature} in {}", kind.name()))
            }
            Err(why) => (format!("{}: left alone ({why})", rel.display()), "no-op".into()),
        }
    }

    /// Byte and line edits, and special texts, anywhere in any file.
    fn content(&mut self) -> Done {
        let (rel, kind) = self.pick_file();
        self.edit_file(&rel, kind, |rng, data| match rng.below(9) {
            0 if !data.is_empty() => {
                let (at, bit) = (rng.below(data.len()), rng.below(8));
                data[at] ^= 1 << bit;
                (format!("flipped bit {bit} of byte {at}"), "bit flip".into())
            }
            1 => {
                let at = rng.below(data.len() + 1);
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes.iter().copied());
                (format!("inserted bytes {bytes:02x?} at byte {at}"), "random bytes".into())
            }
            2 if !data.is_empty() => {
                let at = rng.below(data.len());
                let end = (at + 1 + rng.below(64)).min(data.len());
                data.drain(at..end);
                (format!("deleted bytes {at}..{end}"), "deleted bytes".into())
            }
            3 => {
                let at = rng.below(data.len() + 1);
                data.truncate(at);
                (format!("truncated at byte {at}"), "truncation".into())
            }
            4..=6 => edit_lines(rng, data),
            _ => {
                let (label, text) = *rng.pick(SPECIALS);
                let at = char_boundary(rng, data);
                data.splice(at..at, text.bytes());
                (format!("inserted {label} {text:?} at byte {at} ({})", line_at(data, at)), format!("inserted {label}"))
            }
        })
    }

    /// Jinja-specific edits of a template.
    fn template(&mut self) -> Done {
        let image = self.pick_image();
        let (dir, rel) = (image.dir.clone(), image.dir.join("Dockerfile.template"));
        match self.rng.below(12) {
            0..=2 => self.edit_file(&rel, FileKind::Template, |rng, data| {
                let (label, text) = *rng.pick(IN_TAG);
                match tag_position(rng, data) {
                    Some(at) => {
                        data.splice(at..at, text.bytes());
                        let line = line_at(data, at);
                        (
                            format!("inserted {label} {text:?} inside a tag at byte {at} ({line})"),
                            format!("{label} in a tag"),
                        )
                    }
                    None => ("no tag to insert into".into(), "no-op".into()),
                }
            }),
            3..=5 => self.edit_file(&rel, FileKind::Template, |rng, data| {
                let (label, text) = *rng.pick(JINJA);
                let at = line_start(rng, data);
                data.splice(at..at, format!("{text}\n").into_bytes());
                (format!("inserted {label} `{text}` at byte {at}"), format!("jinja: {label}"))
            }),
            6..=8 => self.edit_file(&rel, FileKind::Template, |rng, data| {
                let (label, text) = *rng.pick(DOCKERFILE);
                let depth = 1000 * (1 + rng.below(100));
                let text = match text {
                    "deep:" => format!("FROM {}x{}", "${a:-".repeat(depth), "}".repeat(depth)),
                    "doubling:" => {
                        let chain: String = (1..48).map(|i| format!("ARG A{i}=$A{}$A{}\n", i - 1, i - 1)).collect();
                        format!("ARG A0=xx\n{chain}FROM $A47")
                    }
                    "longfrom:" => format!("FROM {}", "a".repeat(100_000)),
                    "continued:" => format!("{}b", "RUN a \\\n".repeat(100_000)),
                    _ => expand(text),
                };
                let at = if rng.chance(30) { 0 } else { line_start(rng, data) };
                data.splice(at..at, format!("{text}\n").into_bytes());
                (format!("inserted {label} {} at byte {at}", abbreviate(&text)), format!("dockerfile: {label}"))
            }),
            9 => self.edit_file(&rel, FileKind::Template, |rng, data| {
                let depth = 1000 * (1 + rng.below(100));
                let (label, text) = match rng.below(4) {
                    0 => ("parentheses", format!("{{{{ {}1{} }}}}", "(".repeat(depth), ")".repeat(depth))),
                    1 => ("brackets", format!("{{{{ {}{} }}}}", "[".repeat(depth), "]".repeat(depth))),
                    2 => ("dicts", format!("{{{{ {}1{} }}}}", "{'a': ".repeat(depth), "}".repeat(depth))),
                    _ => ("if blocks", format!("{}x{}", "{% if true %}".repeat(depth), "{% endif %}".repeat(depth))),
                };
                let at = line_start(rng, data);
                data.splice(at..at, format!("{text}\n").into_bytes());
                (format!("inserted {depth} nested {label} at byte {at}"), format!("jinja: deeply nested {label}"))
            }),
            _ => {
                let label = *self.rng.pick(INCLUDED);
                let (done, _) = self.edit_file(&rel, FileKind::Template, |rng, data| {
                    let at = line_start(rng, data);
                    data.splice(at..at, b"{% include 'fuzz-include' %}\n".iter().copied());
                    (format!("inserted `{{% include 'fuzz-include' %}}` at byte {at}"), String::new())
                });
                let include = dir.join("fuzz-include");
                let made = self.fresh(&include).and_then(|include| {
                    let huge = "FROM scratch\n".repeat(HUGE / 13);
                    match label {
                        "FIFO" => make_fifo(&include),
                        "symlink to /dev/zero" => symlink("/dev/zero", &include),
                        "symlink to /dev/urandom" => symlink("/dev/urandom", &include),
                        "directory" => fs::create_dir(&include),
                        "dangling symlink" => symlink("no/such/file", &include),
                        "symlink to itself" => symlink("fuzz-include", &include),
                        "invalid UTF-8" => fs::write(&include, b"RUN \xff\xfe\n"),
                        "12 MB file" => fs::write(&include, huge),
                        "file including itself" => fs::write(&include, "{% include 'fuzz-include' %}\n"),
                        _ => fs::write(&include, "{% include 'Dockerfile.template' %}\n"),
                    }
                });
                if let Err(e) = made {
                    return (format!("{done}; fuzz-include cannot be made ({e})"), "no-op".into());
                }
                (format!("{done}; fuzz-include is a {label}"), format!("include of a {label}"))
            }
        }
    }

    fn changelog(&mut self) -> Done {
        let other = self.pick_image().name.clone();
        let rel = self.pick_image().dir.join("changelog");
        self.edit_file(&rel, FileKind::Changelog, |rng, data| {
            let text = String::from_utf8_lossy(data).into_owned();
            let (header, rest) = text.split_once('\n').unwrap_or((&text, ""));
            let (open, close) = (header.find(" (").unwrap_or(header.len()), header.find(')').unwrap_or(header.len()));
            let (label, new) = match rng.below(8) {
                0 if open < close => {
                    let (label, version) = *rng.pick(VERSIONS);
                    let version = expand(version);
                    (format!("version {label}"), format!("{} ({version}{}\n{rest}", &header[..open], &header[close..]))
                }
                1 => {
                    let (label, name) = *rng.pick(NAMES);
                    let name = if name == "duplicate" { other } else { expand(name) };
                    (format!("name {label}"), format!("{name}{}\n{rest}", &header[open..]))
                }
                2 => {
                    let tail =
                        *rng.pick(&[" ; ", "", " wikimedia urgency=medium", " é; urgency=😀", " wikimedia; a=b=c; ;"]);
                    (
                        format!("header tail {tail:?}"),
                        format!("{}{tail}\n{rest}", &header[..(close + 1).min(header.len())]),
                    )
                }
                3 => {
                    let (label, date) = *rng.pick(DATES);
                    let lines: Vec<String> = text
                        .split_inclusive('\n')
                        .map(|l| match (l.starts_with(" -- "), l.rfind(">  ")) {
                            (true, Some(at)) => format!("{}>  {date}\n", &l[..at]),
                            _ => l.to_owned(),
                        })
                        .collect();
                    (format!("trailer date {label}"), lines.concat())
                }
                4 => {
                    let mut dropped = false;
                    let lines: Vec<&str> = text
                        .split_inclusive('\n')
                        .filter(|l| dropped || !l.starts_with(" -- ") || !std::mem::replace(&mut dropped, true))
                        .collect();
                    ("no trailer".into(), lines.concat())
                }
                5 => ("CRLF line endings".into(), text.replace('\n', "\r\n")),
                6 => ("a top entry without a trailer".into(), format!("{header}\n\n  * Fuzz.\n\n{text}")),
                _ => ("blank lines before the header".into(), format!("\n\n   {text}")),
            };
            *data = new.into_bytes();
            (label.clone(), format!("changelog: {label}"))
        })
    }

    fn control(&mut self) -> Done {
        let image = self.pick_image();
        let (name, rel) = (image.name.clone(), image.dir.join("control"));
        let random = self.pick_image().name.clone();
        let (line, label) = match self.rng.below(8) {
            0 => ("Depends: fuzz-no-such-image".to_owned(), "unknown dependency".to_owned()),
            1 => (format!("Depends: {name}"), "self dependency".to_owned()),
            2 => return self.cycle(),
            3 => {
                let names: Vec<&str> = self.corpus.images.iter().map(|i| i.name.as_str()).collect();
                let list = names.iter().cycle().take(100_000).copied().collect::<Vec<_>>().join(", ");
                (format!("Depends: {list}"), "100000 dependencies".to_owned())
            }
            4 | 5 => {
                let (label, text) = *self.rng.pick(RELATIONS);
                (text.replace("{dep}", &random), format!("relation: {label}"))
            }
            6 => (format!("Build-Depends: {random}\nBuild-Depends: {random}"), "duplicate field".to_owned()),
            _ => (" continuation".to_owned(), "continuation line".to_owned()),
        };
        let path = self.touch(&rel);
        let old = read_regular(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let new = if label == "continuation line" { format!("{line}\n{old}") } else { add_field(&old, &line) };
        if let Err(e) = write_regular(&path, new.as_bytes()) {
            return (format!("{}: cannot be written ({e})", rel.display()), "no-op".into());
        }
        (format!("{}: {label}: {}", rel.display(), abbreviate(&line)), format!("control: {label}"))
    }

    /// A dependency of an image on one of its descendants: a cycle.
    fn cycle(&mut self) -> Done {
        let corpus = self.corpus;
        let children: Vec<&String> = corpus.parents.keys().collect();
        if children.is_empty() {
            return ("no dependency in the corpus to make a cycle with".into(), "no-op".into());
        }
        let descendant = (*self.rng.pick(&children)).clone();
        let mut ancestor = descendant.clone();
        for _ in 0..1 + self.rng.below(5) {
            match corpus.parents.get(&ancestor) {
                Some(parents) => ancestor = self.rng.pick(parents).clone(),
                None => break,
            }
        }
        let dir = corpus.images.iter().find(|i| i.name == ancestor).expect("a tree image").dir.clone();
        let rel = dir.join("control");
        let path = self.touch(&rel);
        let old = read_regular(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if let Err(e) = write_regular(&path, add_field(&old, &format!("Depends: {descendant}")).as_bytes()) {
            return (format!("{}: cannot be written ({e})", rel.display()), "no-op".into());
        }
        (format!("{}: depends on its descendant {descendant}", rel.display()), "control: cycle".into())
    }

    fn config(&mut self) -> Done {
        let rel = PathBuf::from("config.yaml");
        self.edit_file(&rel, FileKind::Config, |rng, data| {
            let text = String::from_utf8_lossy(data).into_owned();
            let (label, new) = match rng.below(7) {
                0..=2 => {
                    let (key, label, value) = *rng.pick(CONFIG_VALUES);
                    let value = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                        Some(inner) if inner.starts_with("long:") => format!("[{}]", expand(inner)),
                        _ => expand(value),
                    };
                    (format!("{key}: {label}"), format!("{}{key}: {value}\n", without_key(&text, key)))
                }
                3 => {
                    let (label, snippet) = *rng.pick(BAD_YAML);
                    let new = if rng.chance(50) { format!("{snippet}\n{text}") } else { format!("{text}{snippet}\n") };
                    (format!("bad YAML: {label}"), new)
                }
                4 => {
                    let mut laughs = String::from("lol0: &l0 \"lol\"\n");
                    for i in 1..10 {
                        let _ = writeln!(laughs, "lol{i}: &l{i} [{}]", vec![format!("*l{}", i - 1); 10].join(","));
                    }
                    ("billion laughs".into(), format!("{text}{laughs}"))
                }
                5 => {
                    let depth = 1000 * (1 + rng.below(100));
                    let deep = if rng.chance(50) {
                        format!("deep: {}{}\n", "[".repeat(depth), "]".repeat(depth))
                    } else {
                        format!("deep: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth))
                    };
                    (format!("{depth} nested collections"), format!("{text}{deep}"))
                }
                _ => {
                    let whole =
                        *rng.pick(&["", "~", "[]", "42", "---\n---\n", "!!binary AAAA", "registry: x\nregistry: y"]);
                    (format!("whole file {whole:?}"), whole.to_owned())
                }
            };
            *data = new.into_bytes();
            (label.clone(), format!("config: {label}"))
        })
    }

    /// Replaces a file by something that is not a plain file.
    fn replace(&mut self) -> Done {
        let (rel, kind) = self.pick_file();
        let label = *self.rng.pick(REPLACEMENTS);
        let path = self.touch(&rel);
        if label == "loop of two symlinks" {
            self.touched.push(fuzz_loop_partner(&rel));
        }
        if let Err(e) = replace_with(&path, label) {
            return (format!("{}: cannot be replaced by a {label} ({e})", rel.display()), "no-op".into());
        }
        (format!("{}: replaced by a {label}", rel.display()), format!("{label} as {}", kind.name()))
    }

    fn huge(&mut self) -> Done {
        let (rel, kind) = self.pick_file();
        self.edit_file(&rel, kind, |rng, data| match rng.below(3) {
            0 => {
                if data.is_empty() {
                    data.extend_from_slice(b"x\n");
                }
                let unit = data.clone();
                while data.len() < HUGE {
                    data.extend_from_slice(&unit);
                }
                ("grown to 12 MB by repeating its content".into(), "12 MB (repeated content)".into())
            }
            1 => {
                *data = vec![b'x'; HUGE];
                ("replaced by 12 MB of `x` (one line)".into(), "12 MB single line".into())
            }
            _ => {
                let (label, unit) = *rng.pick(&[
                    ("x", "x"),
                    ("backslashes", "\\"),
                    ("braces", "{"),
                    ("parentheses", "("),
                    ("é", "é"),
                    ("expressions", "{{ 1 }}"),
                    ("smart quotes", "‘"),
                ]);
                let at = line_start(rng, data);
                let line = format!("{}\n", unit.repeat(LONG_LINE / unit.len()));
                data.splice(at..at, line.into_bytes());
                (format!("inserted a 1 MB line of {label} at byte {at}"), format!("1 MB line of {label}"))
            }
        })
    }

    fn dockerignore(&mut self) -> Done {
        let rel = self.pick_image().dir.join(".dockerignore");
        let path = self.touch(&rel);
        let mut text = read_regular(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let mut added = Vec::new();
        for _ in 0..1 + self.rng.below(5) {
            let pattern =
                if self.rng.chance(10) { "a".repeat(100_000) } else { (*self.rng.pick(DOCKERIGNORE)).to_owned() };
            let _ = writeln!(text, "{pattern}");
            added.push(abbreviate(&pattern));
        }
        if let Err(e) = write_regular(&path, text.as_bytes()) {
            return (format!("{}: cannot be written ({e})", rel.display()), "no-op".into());
        }
        (format!("{}: added patterns {added:?}", rel.display()), "dockerignore patterns".into())
    }

    /// New, duplicated, nested or linked image directories.
    fn structure(&mut self) -> Done {
        let source = self.pick_image().dir.clone();
        let other = self.pick_image().dir.clone();
        let from = self.path(&source);
        let done: std::io::Result<(String, &str)> = match self.rng.below(8) {
            0 => self.fresh(Path::new("images/fuzz-copy")).and_then(|to| {
                copy_tree(&from, &to)?;
                Ok((format!("copied {} to images/fuzz-copy", source.display()), "a copy of an image directory"))
            }),
            1 => self.fresh(&other.join("fuzz-nested")).and_then(|to| {
                copy_tree(&from, &to)?;
                Ok((
                    format!("copied {} into {}/fuzz-nested", source.display(), other.display()),
                    "an image nested in another",
                ))
            }),
            2 if source != other => {
                let target = self.path(&other);
                self.fresh(&source).and_then(|path| {
                    symlink(target, path)?;
                    Ok((
                        format!("replaced {} by a symlink to {}", source.display(), other.display()),
                        "an image directory symlinked",
                    ))
                })
            }
            3 => self.fresh(&source.join("fuzz-loop")).and_then(|path| {
                symlink("..", path)?;
                Ok((format!("added {}/fuzz-loop -> ..", source.display()), "a directory symlink loop"))
            }),
            4 => self.fresh(Path::new("images/fuzz-root")).and_then(|path| {
                symlink("/", path)?;
                Ok(("added images/fuzz-root -> /".into(), "a symlink to /"))
            }),
            5 => self.fresh(Path::new("images/fuzz-deep")).and_then(|top| {
                let deep: PathBuf = std::iter::once(top).chain(std::iter::repeat_n(PathBuf::from("d"), 300)).collect();
                fs::create_dir_all(&deep)?;
                for file in ["changelog", "Dockerfile.template"] {
                    fs::copy(from.join(file), deep.join(file))?;
                }
                Ok((
                    format!("copied the changelog and template of {} 300 directories deep", source.display()),
                    "an image 300 directories deep",
                ))
            }),
            6 => self.fresh(&Path::new("images").join(OsStr::from_bytes(b"fuzz-\xff"))).and_then(|to| {
                copy_tree(&from, &to)?;
                Ok((
                    format!("copied {} to a directory whose name is not UTF-8", source.display()),
                    "a non-UTF-8 directory name",
                ))
            }),
            _ => self.fresh(Path::new("images/fuzz-links")).and_then(|dir| {
                fs::create_dir(&dir)?;
                for file in ["changelog", "Dockerfile.template"] {
                    symlink(from.join(file), dir.join(file))?;
                }
                Ok((
                    format!("added images/fuzz-links with symlinks to the files of {}", source.display()),
                    "an image of symlinked files",
                ))
            }),
        };
        match done {
            Ok((label, kind)) => (label, format!("structure: {kind}")),
            Err(e) => (format!("a change of the structure around {} failed ({e})", source.display()), "no-op".into()),
        }
    }
}

/// Duplicates, deletes or swaps lines.
fn edit_lines(rng: &mut Rng, data: &mut Vec<u8>) -> Done {
    let mut lines: Vec<Vec<u8>> = data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.is_empty() {
        return ("no line to edit".into(), "no-op".into());
    }
    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
    let done = match rng.below(3) {
        0 => {
            let line = lines[a].clone();
            lines.insert(a, line);
            (format!("duplicated line {}", a + 1), "duplicated line".into())
        }
        1 => {
            lines.remove(a);
            (format!("deleted line {}", a + 1), "deleted line".into())
        }
        _ => {
            lines.swap(a, b);
            (format!("swapped lines {} and {}", a + 1, b + 1), "swapped lines".into())
        }
    };
    *data = lines.concat();
    done
}

/// A random insertion point at a character boundary (any byte if the file is not UTF-8).
fn char_boundary(rng: &mut Rng, data: &[u8]) -> usize {
    let at = rng.below(data.len() + 1);
    match std::str::from_utf8(data) {
        Ok(text) => (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0),
        Err(_) => at,
    }
}

/// The start of a random line.
fn line_start(rng: &mut Rng, data: &[u8]) -> usize {
    let starts: Vec<usize> =
        std::iter::once(0).chain(data.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1)).collect();
    *rng.pick(&starts)
}

/// A character boundary strictly inside a random `{{ }}` or `{% %}` tag, if there is one.
fn tag_position(rng: &mut Rng, data: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(data).ok()?;
    let opens: Vec<usize> = text.match_indices("{{").chain(text.match_indices("{%")).map(|(i, _)| i).collect();
    if opens.is_empty() {
        return None;
    }
    let open = *rng.pick(&opens);
    let close = if &text[open..open + 2] == "{{" { "}}" } else { "%}" };
    let end = text[open + 2..].find(close).map_or(text.len(), |e| open + 2 + e);
    let at = open + 2 + rng.below(end - open - 1);
    Some((open + 2..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(open + 2))
}

/// "line N: `...`" for the line holding byte `at`, shortened.
fn line_at(data: &[u8], at: usize) -> String {
    let at = at.min(data.len());
    let start = data[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = data[at..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| at + i);
    let number = data[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    format!("line {number}: {}", abbreviate(&String::from_utf8_lossy(&data[start..end])))
}

/// A text shortened to about 120 characters, as Rust's debug string (so control characters show).
fn abbreviate(text: &str) -> String {
    if text.chars().count() <= 120 {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(100).collect();
    format!("{head:?}... ({} bytes)", text.len())
}

/// `text` with `line` added as a field of its first paragraph (appended to an existing field of that name).
fn add_field(text: &str, line: &str) -> String {
    let field = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let value = line.split_once(':').map_or("", |(_, v)| v.trim());
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if !line.contains('\n')
        && let Some(existing) =
            lines.iter_mut().find(|l| l.split(':').next().unwrap_or_default().to_ascii_lowercase() == field)
    {
        existing.push_str(&format!(", {value}"));
    } else {
        let end = lines.iter().position(|l| l.trim().is_empty()).unwrap_or(lines.len());
        lines.insert(end, line.to_owned());
    }
    lines.join("\n") + "\n"
}

/// `text` without the top-level key `key` (and the indented lines under it).
fn without_key(text: &str, key: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with(&format!("{key}:")) {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with(' ') || line.starts_with('-')) {
            continue;
        }
        skipping = false;
        out.push_str(line);
    }
    out
}

/// The bytes of a regular file, possibly through a symlink; never opens a FIFO or a device.
fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > 64 << 20 {
        return Err("over 64 MB".into());
    }
    fs::read(path).map_err(|e| e.to_string())
}

/// Writes a regular file in place of whatever is at `path`: never through a symlink, which may point into the
/// corpus (or anywhere).
fn write_regular(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    remove_any(path)?;
    fs::create_dir_all(path.parent().expect("a parent"))?;
    fs::write(path, bytes)
}

/// Removes a file, a symlink or a directory tree, never following symlinks; nothing there is fine.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

fn make_fifo(path: &Path) -> std::io::Result<()> {
    let name = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `name` is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(name.as_ptr(), 0o644) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

fn fuzz_loop_partner(rel: &Path) -> PathBuf {
    let mut name = rel.file_name().unwrap_or_default().to_owned();
    name.push(".fuzz-loop");
    rel.with_file_name(name)
}

/// Replaces whatever is at `path` as `label` (one of [`REPLACEMENTS`]) says.
fn replace_with(path: &Path, label: &str) -> std::io::Result<()> {
    remove_any(path)?;
    fs::create_dir_all(path.parent().expect("a parent"))?;
    let name = path.file_name().expect("a file name");
    match label {
        "symlink to /dev/zero" => symlink("/dev/zero", path),
        "symlink to /dev/urandom" => symlink("/dev/urandom", path),
        "symlink to /etc/passwd" => symlink("/etc/passwd", path),
        "dangling symlink" => symlink("no/such/file", path),
        "symlink to itself" => symlink(name, path),
        "loop of two symlinks" => {
            let partner = fuzz_loop_partner(path);
            remove_any(&partner)?;
            symlink(partner.file_name().expect("a file name"), path)?;
            symlink(name, &partner)
        }
        "symlink to its directory" => symlink(".", path),
        "symlink to /" => symlink("/", path),
        "FIFO" => make_fifo(path),
        "directory" => fs::create_dir(path),
        "removed" => Ok(()),
        _ => fs::write(path, b""),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Running imgraph

/// One command of a case; `{tree}` in an argument stands for the tree root.
#[derive(Debug, Clone)]
struct Cmd {
    /// `graph`, `render NAME`, ...
    label: String,
    args: Vec<String>,
}

impl Cmd {
    fn new(label: impl Into<String>, args: &[&str]) -> Self {
        let mut all = vec!["-c".to_owned(), "{tree}/config.yaml".to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Self { label: label.into(), args: all }
    }

    /// The command's name, what failures are grouped by.
    fn kind(&self) -> &str {
        self.label.split(' ').next().unwrap_or_default()
    }

    fn args_for(&self, tree: &Path) -> Vec<String> {
        self.args.iter().map(|a| a.replace("{tree}", &tree.to_string_lossy())).collect()
    }
}

/// The commands of a case: the ones that need no Docker, and `status`/`build` with no daemon to reach.
fn commands(renders: &[String], update: &str) -> Vec<Cmd> {
    let mut cmds = vec![
        Cmd::new("graph", &["graph", "{tree}/images", "--format", "json"]),
        Cmd::new("check", &["check", "{tree}/images"]),
    ];
    for name in renders {
        cmds.push(Cmd::new(format!("render {name}"), &["render", "{tree}/images", name]));
    }
    cmds.push(Cmd::new(format!("update {update}"), &["update", update, "{tree}/images", "--reason", "x", "--dry-run"]));
    cmds.push(Cmd::new("status", &["status", "{tree}/images"]));
    cmds.push(Cmd::new("build", &["build", "{tree}/images", "--log-dir", "{tree}/../logs"]));
    cmds
}

/// What one run did.
#[derive(Debug, Clone, Default)]
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    /// Killed as hanging, and why.
    hang: Option<String>,
    /// Killed for going over the memory limit.
    over_memory: bool,
    /// Peak resident set size (as last polled).
    max_rss_kb: u64,
    elapsed: Duration,
    /// User and system CPU time.
    cpu: Duration,
    stderr: String,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Duration,
    wall_cap: Duration,
    memory_kb: u64,
}

const LIMITS: Limits = Limits { timeout: TIMEOUT, wall_cap: WALL_CAP, memory_kb: MEMORY_LIMIT_KB };

/// The environment of every run: nothing inherited but `PATH` (no `HOME`, no user config, no daemon).
fn run_env(scratch: &Path) -> Vec<(String, String)> {
    let xdg = scratch.join("xdg");
    fs::create_dir_all(&xdg).expect("create the empty XDG_CONFIG_HOME");
    vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())),
        ("XDG_CONFIG_HOME".into(), xdg.to_string_lossy().into_owned()),
        ("DOCKER_HOST".into(), DOCKER_HOST.into()),
    ]
}

/// Runs every argument list at once, each in its own process group, watching time and memory.
fn run_all(
    program: &str,
    arg_lists: &[Vec<String>],
    cwd: &Path,
    env: &[(String, String)],
    limits: Limits,
) -> Vec<Outcome> {
    struct Running {
        pid: i32,
        started: Instant,
        stderr: JoinHandle<Vec<u8>>,
        stdout: JoinHandle<Vec<u8>>,
    }
    let running: Vec<Running> = arg_lists
        .iter()
        .map(|args| {
            let mut command = Command::new(program);
            command
                .args(args)
                .current_dir(cwd)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0);
            // SAFETY: the closure only calls setrlimit, which is async-signal-safe, as pre_exec requires.
            unsafe {
                command.pre_exec(|| {
                    let cap = libc::rlimit { rlim_cur: ADDRESS_SPACE_CAP, rlim_max: ADDRESS_SPACE_CAP };
                    libc::setrlimit(libc::RLIMIT_AS, &cap);
                    Ok(())
                });
            }
            #[allow(clippy::zombie_processes, reason = "reaped by pid with wait4, which also gives its rusage")]
            let mut child = command.spawn().unwrap_or_else(|e| panic!("run {program}: {e}"));
            let stdout = capture(child.stdout.take().expect("stdout"));
            let stderr = capture(child.stderr.take().expect("stderr"));
            Running { pid: child.id() as i32, started: Instant::now(), stdout, stderr }
        })
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; running.len()];
    // (wall, CPU) time of each run about a second ago: a run past the timeout that used no CPU since is blocked.
    let mut samples = vec![(Duration::ZERO, Duration::ZERO); running.len()];
    // The peak RSS is polled: wait4's ru_maxrss would count this (large) test process, which the child was
    // forked from, while VmHWM is the child's own since its exec. Only the last poll interval can be missed.
    let mut peaks = vec![0u64; running.len()];
    while outcomes.iter().any(Option::is_none) {
        for (((run, outcome), sample), peak) in
            running.iter().zip(outcomes.iter_mut()).zip(samples.iter_mut()).zip(peaks.iter_mut())
        {
            if outcome.is_some() {
                continue;
            }
            let elapsed = run.started.elapsed();
            let exited = has_exited(run.pid);
            if !exited {
                *peak = (*peak).max(peak_rss_kb(run.pid).unwrap_or(0));
            }
            let (hang, over_memory) = if exited {
                (None, false)
            } else if *peak > limits.memory_kb {
                (None, true)
            } else {
                let since_sample = elapsed.saturating_sub(sample.0);
                if elapsed <= limits.timeout && since_sample < Duration::from_secs(1) {
                    continue;
                }
                let cpu = cpu_time(run.pid);
                let progress = cpu.saturating_sub(sample.1);
                if since_sample >= Duration::from_secs(1) {
                    *sample = (elapsed, cpu);
                }
                let hang = if elapsed <= limits.timeout {
                    continue;
                } else if cpu >= limits.timeout {
                    format!("busy: {} s of CPU", limits.timeout.as_secs_f64())
                } else if since_sample >= Duration::from_secs(1) && progress < Duration::from_millis(50) {
                    format!("blocked: no CPU used in a second, after {:.1} s", elapsed.as_secs_f64())
                } else if elapsed >= limits.wall_cap {
                    format!("starved: still running after {} s", limits.wall_cap.as_secs_f64())
                } else {
                    continue;
                };
                (Some(hang), false)
            };
            // The group goes too: a child process of imgraph must not outlive the run (nor hold its pipes).
            // SAFETY: plain syscall; the leader is not reaped yet, so the group id is still ours.
            unsafe { libc::kill(-run.pid, libc::SIGKILL) };
            let (status, cpu) = reap(run.pid);
            let killed = hang.is_some() || over_memory;
            *outcome = Some(Outcome {
                code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                signal: (libc::WIFSIGNALED(status) && !killed).then(|| libc::WTERMSIG(status)),
                hang,
                over_memory,
                max_rss_kb: *peak,
                elapsed,
                cpu,
                stderr: String::new(),
            });
        }
        std::thread::sleep(POLL);
    }
    running
        .into_iter()
        .zip(outcomes)
        .map(|(run, outcome)| {
            let _ = run.stdout.join();
            let stderr = run.stderr.join().unwrap_or_default();
            Outcome { stderr: String::from_utf8_lossy(&stderr).into_owned(), ..outcome.expect("every run ended") }
        })
        .collect()
}

/// Reads a pipe to its end, keeping the first [`CAPTURE_LIMIT`] bytes.
fn capture(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (mut kept, mut buffer) = (Vec::new(), vec![0u8; 64 * 1024]);
        while let Ok(n @ 1..) = pipe.read(&mut buffer) {
            let room = CAPTURE_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&buffer[..n.min(room)]);
        }
        kept
    })
}

/// Whether `pid` has ended, without reaping it.
fn has_exited(pid: i32) -> bool {
    // SAFETY: a zeroed siginfo_t is valid; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: plain syscall on our own child.
    let result = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
    // SAFETY: si_pid is set (or left 0) by waitid.
    result != 0 || unsafe { info.si_pid() } != 0
}

/// Reaps `pid`: its wait status and CPU time.
fn reap(pid: i32) -> (i32, Duration) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: plain syscall on our own child.
        let result = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if result == pid {
            let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
            let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
            return (status, cpu);
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4 {pid}: {error}");
    }
}

/// The CPU time (user and system, all threads) used so far by a running process.
fn cpu_time(pid: i32) -> Duration {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    // The command name may hold spaces: fields are counted after its closing parenthesis (field 3 is first).
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The peak RSS so far (`VmHWM`), while the process runs.
fn peak_rss_kb(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------------------
// Verdicts

/// Why a run fails the acceptance criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// A panic, at this location (`src/file.rs:L:C`).
    Panic(String),
    Hang,
    Memory,
    StackOverflow,
    Signal(i32),
    Exit(i32),
}

impl Fault {
    fn describe(&self) -> String {
        match self {
            Fault::Panic(location) => format!("panic at {location}"),
            Fault::Hang => format!("hang (over {} s)", TIMEOUT.as_secs()),
            Fault::Memory => format!("memory (over {} MB)", MEMORY_LIMIT_KB / 1024),
            Fault::StackOverflow => "stack overflow".into(),
            Fault::Signal(signal) => format!("killed by signal {signal}"),
            Fault::Exit(code) => format!("exit code {code}"),
        }
    }

    fn short(&self) -> &'static str {
        match self {
            Fault::Panic(_) => "panic",
            Fault::Hang => "hang",
            Fault::Memory => "memory",
            Fault::StackOverflow => "stack overflow",
            Fault::Signal(_) => "signal",
            Fault::Exit(_) => "exit code",
        }
    }
}

fn judge(outcome: &Outcome, limits: Limits) -> Option<Fault> {
    let stderr = &outcome.stderr;
    if outcome.hang.is_some() {
        Some(Fault::Hang)
    } else if outcome.over_memory || outcome.max_rss_kb > limits.memory_kb || stderr.contains("memory allocation of") {
        Some(Fault::Memory)
    } else if let Some(location) = panic_location(stderr) {
        Some(Fault::Panic(location))
    } else if stderr.contains("has overflowed its stack") {
        Some(Fault::StackOverflow)
    } else if let Some(signal) = outcome.signal {
        Some(Fault::Signal(signal))
    } else {
        match outcome.code {
            Some(0..=4) => None,
            Some(code) => Some(Fault::Exit(code)),
            None => Some(Fault::Signal(0)),
        }
    }
}

/// `src/x.rs:1:2` from "panicked at src/x.rs:1:2:"; a dependency's path is cut to `crate-version/src/...`.
fn panic_location(stderr: &str) -> Option<String> {
    let rest = &stderr[stderr.find("panicked at ")? + "panicked at ".len()..];
    let location = rest.split_whitespace().next().unwrap_or_default().trim_end_matches([':', ',']);
    let location = location.split("/registry/src/").nth(1).and_then(|l| l.split_once('/')).map_or(location, |(_, l)| l);
    Some(location.to_owned())
}

/// The first lines of stderr, for the report.
fn stderr_head(stderr: &str, lines: usize) -> String {
    let kept: Vec<String> =
        stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .take(lines)
            .map(|l| {
                if l.chars().count() > 200 {
                    format!("{}...", l.chars().take(200).collect::<String>())
                } else {
                    l.into()
                }
            })
            .collect();
    if kept.is_empty() { "(empty)".into() } else { kept.join("\n") }
}

// ---------------------------------------------------------------------------------------------------------
// Cases

/// The settings of a fuzzing run, from the environment.
struct Settings {
    seed: u64,
    cases: usize,
    budget: Option<Duration>,
    out: PathBuf,
    replay: Option<(u64, Option<usize>)>,
}

fn parse_u64(text: &str) -> u64 {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .unwrap_or_else(|e| panic!("not a number: {text}: {e}"))
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let today = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400);
        let seed = var("IMGRAPH_FUZZ_SEED").map_or(today, |s| parse_u64(&s));
        let cases = var("IMGRAPH_FUZZ_CASES").map_or(DEFAULT_CASES, |s| parse_u64(&s) as usize);
        let budget = var("IMGRAPH_FUZZ_BUDGET").map_or(DEFAULT_BUDGET_SECS, |s| parse_u64(&s));
        let out = var("IMGRAPH_FUZZ_OUT").map_or_else(
            || std::env::temp_dir().join(format!("imgraph-fuzz-{seed:x}-{}", std::process::id())),
            PathBuf::from,
        );
        let replay = var("IMGRAPH_FUZZ_REPLAY").map(|r| match r.split_once('/') {
            Some((seed, index)) => (parse_u64(seed), Some(parse_u64(index) as usize)),
            None => (parse_u64(&r), None),
        });
        Self { seed, cases, budget: (budget > 0).then(|| Duration::from_secs(budget)), out, replay }
    }
}

/// A case's mutations and commands, all derived from its seed.
struct Case {
    /// The seed of each mutation, in order.
    mutation_seeds: Vec<u64>,
    /// The case's own randomness, after the mutation seeds (picks the images to render).
    rng: Rng,
}

impl Case {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let count = 1 + rng.below(3);
        let mutation_seeds = (0..count).map(|_| rng.next()).collect();
        Self { mutation_seeds, rng }
    }

    /// Fresh tree in `scratch/tree`, with the mutations `which` applied in order.
    fn build(&self, corpus: &Corpus, scratch: &Path, which: &[usize]) -> (PathBuf, Vec<Applied>) {
        let tree = scratch.join("tree");
        if tree.exists() {
            fs::remove_dir_all(&tree).expect("remove the previous tree");
        }
        corpus.copy_to(&tree);
        let applied = which.iter().map(|&i| mutate(corpus, &tree, self.mutation_seeds[i])).collect();
        (tree, applied)
    }

    /// Render the touched images (at most two) and a random one; update the first touched one.
    fn commands(&mut self, corpus: &Corpus, applied: &[Applied]) -> Vec<Cmd> {
        let mut renders: Vec<String> = Vec::new();
        for name in applied.iter().filter_map(|a| a.image.clone()) {
            if !renders.contains(&name) && renders.len() < 2 {
                renders.push(name);
            }
        }
        let random = corpus.images[self.rng.below(corpus.images.len())].name.clone();
        let update = renders.first().cloned().unwrap_or_else(|| random.clone());
        if !renders.contains(&random) {
            renders.push(random);
        }
        commands(&renders, &update)
    }
}

/// What a failure is blamed on.
#[derive(Debug, Clone)]
struct Trigger {
    /// The mutation (index in the case) that fails alone; `None` when only the combination does.
    index: Option<usize>,
    description: String,
    signature: String,
    /// Where the mutated files are saved.
    saved: PathBuf,
    /// The stderr of the replay with this mutation alone, if there was one: the whole case's run may also
    /// show what other mutations did (a worker thread's panic in a run that then hangs).
    stderr: Option<String>,
}

/// A distinct failure: one fault class, one command kind set, one kind of mutation.
#[derive(Debug)]
struct Distinct {
    fault: Fault,
    commands: BTreeSet<String>,
    trigger: Trigger,
    case_seed: u64,
    stderr: String,
    cases: BTreeSet<u64>,
}

impl Distinct {
    fn key(fault: &Fault, trigger: &Trigger) -> String {
        match fault {
            // One panic location is one bug, whatever reaches it.
            Fault::Panic(location) => format!("panic {location}"),
            _ => format!("{} / {}", fault.describe(), trigger.signature),
        }
    }

    fn report(&self, number: usize) -> String {
        let replay = match self.trigger.index {
            Some(i) => format!("{:#x}/{i}", self.case_seed),
            None => format!("{:#x}", self.case_seed),
        };
        let stderr = self.stderr.replace('\n', "\n             ");
        format!(
            "[{number}] {}\n    commands: {} (in {} case(s))\n    trigger:  {}\n    kind:     {}\n    replay:   \
             IMGRAPH_FUZZ_REPLAY={replay} cargo test --test integration mutation -- --nocapture\n    saved:    {}\n    \
             stderr:   {stderr}\n",
            self.fault.describe(),
            self.commands.iter().cloned().collect::<Vec<_>>().join(", "),
            self.cases.len(),
            self.trigger.description,
            self.trigger.signature,
            self.trigger.saved.display(),
        )
    }
}

/// Copies the touched paths of a tree to `dest` (never following symlinks or opening FIFOs); a listing of them.
fn save_touched(tree: &Path, touched: &[PathBuf], dest: &Path) -> String {
    let mut listing = String::new();
    for rel in touched {
        let (from, to) = (tree.join(rel), dest.join("files").join(rel));
        let _ = fs::create_dir_all(to.parent().expect("a parent"));
        let what = match fs::symlink_metadata(&from) {
            Err(_) => "removed".to_owned(),
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&from).unwrap_or_default();
                let _ = symlink(&target, &to);
                format!("symlink -> {}", target.display())
            }
            Ok(meta) if meta.is_dir() => {
                let _ = copy_tree(&from, &to);
                "directory (copied)".to_owned()
            }
            Ok(meta) if meta.file_type().is_fifo() => "FIFO".to_owned(),
            Ok(meta) if meta.len() <= 2 << 20 => {
                let _ = fs::copy(&from, &to);
                format!("file, {} bytes (copied)", meta.len())
            }
            Ok(meta) => {
                let head: Vec<u8> = fs::File::open(&from)
                    .and_then(|f| {
                        let mut head = Vec::new();
                        f.take(64 * 1024).read_to_end(&mut head).map(|_| head)
                    })
                    .unwrap_or_default();
                let _ = fs::write(to.with_extension("head"), head);
                format!("file, {} bytes (first 64 kB copied to .head)", meta.len())
            }
        };
        let _ = writeln!(listing, "  {}: {what}", rel.display());
    }
    listing
}

/// Everything the run learned, for the summary.
#[derive(Default)]
struct Tally {
    cases: usize,
    runs: usize,
    failing_runs: BTreeMap<&'static str, usize>,
    max_rss: (u64, String),
    slowest: (Duration, String),
    distinct: BTreeMap<String, Distinct>,
}

impl Tally {
    fn record(&mut self, case: usize, cmd: &Cmd, outcome: &Outcome) {
        self.runs += 1;
        if outcome.max_rss_kb > self.max_rss.0 {
            self.max_rss = (outcome.max_rss_kb, format!("{} in case {case}", cmd.label));
        }
        if outcome.hang.is_none() && !outcome.over_memory && outcome.elapsed > self.slowest.0 {
            self.slowest = (outcome.elapsed, format!("{} in case {case}", cmd.label));
        }
    }

    /// Whether a slow failure (`fault`) is already explained by one of `applied`'s kinds of mutation.
    fn known_cause(&self, fault: &Fault, applied: &[Applied]) -> Option<usize> {
        let known: HashSet<(String, &str)> =
            self.distinct.values().map(|d| (d.fault.describe(), d.trigger.signature.as_str())).collect();
        applied.iter().position(|a| known.contains(&(fault.describe(), a.signature.as_str())))
    }
}

/// Runs case `index` (seed `seed`): mutates, runs, attributes and records its failures.
fn run_case(corpus: &Corpus, settings: &Settings, tally: &mut Tally, index: usize, seed: u64) {
    let started = Instant::now();
    let scratch = tempfile::Builder::new().prefix("imgraph-fuzz-case").tempdir().expect("temp dir");
    let env = run_env(scratch.path());
    let mut case = Case::new(seed);
    let all: Vec<usize> = (0..case.mutation_seeds.len()).collect();
    let (tree, applied) = case.build(corpus, scratch.path(), &all);
    let cmds = case.commands(corpus, &applied);
    let arg_lists: Vec<Vec<String>> = cmds.iter().map(|c| c.args_for(&tree)).collect();
    let outcomes = run_all(IMGRAPH, &arg_lists, scratch.path(), &env, LIMITS);
    tally.cases += 1;
    let mut failures = Vec::new();
    for (i, (cmd, outcome)) in cmds.iter().zip(&outcomes).enumerate() {
        tally.record(index, cmd, outcome);
        if let Some(fault) = judge(outcome, LIMITS) {
            *tally.failing_runs.entry(fault.short()).or_default() += 1;
            failures.push((i, fault));
        }
    }
    let summary: Vec<String> = applied.iter().map(|a| a.signature.clone()).collect();
    if failures.is_empty() {
        println!("case {index} {seed:#x}: ok in {:.2} s [{}]", started.elapsed().as_secs_f64(), summary.join("; "));
        return;
    }
    let case_dir = settings.out.join(format!("case-{index:04}-{seed:016x}"));
    let listing = save_touched(&tree, &applied.iter().flat_map(|a| a.touched.clone()).collect::<Vec<_>>(), &case_dir);
    let mut report = format!("case {index}, seed {seed:#x}\nmutations:\n");
    for (i, a) in applied.iter().enumerate() {
        let _ = writeln!(report, "  {i}: {} [{}] (mutation seed {:#x})", a.description, a.signature, a.seed);
    }
    let _ = writeln!(report, "touched:\n{listing}runs:");
    for ((cmd, outcome), args) in cmds.iter().zip(&outcomes).zip(&arg_lists) {
        let verdict = judge(outcome, LIMITS).map_or_else(|| "ok".to_owned(), |f| f.describe());
        let _ = writeln!(
            report,
            "  {}: {verdict}{} (exit {:?}, signal {:?}, {:.2} s, CPU {:.2} s, {} kB)\n    imgraph {}\n    {}",
            cmd.label,
            outcome.hang.as_ref().map_or_else(String::new, |h| format!(", {h}")),
            outcome.code,
            outcome.signal,
            outcome.elapsed.as_secs_f64(),
            outcome.cpu.as_secs_f64(),
            outcome.max_rss_kb,
            args.join(" "),
            stderr_head(&outcome.stderr, 5).replace('\n', "\n    ")
        );
    }

    // Blame each failure on one mutation: the one that fails the same way alone.
    let mut blamed: Vec<(usize, Fault, Trigger)> = Vec::new();
    let mut pending = failures.clone();
    let whole = |saved: &Path| Trigger {
        index: (applied.len() == 1).then_some(0),
        description: applied.iter().map(|a| a.description.clone()).collect::<Vec<_>>().join(" + "),
        signature: summary.join(" + "),
        saved: saved.to_owned(),
        stderr: None,
    };
    if applied.len() == 1 {
        blamed.extend(pending.drain(..).map(|(i, f)| (i, f, whole(&case_dir))));
    }
    // A hang costs 20 s a replay: one already explained by a kind of mutation of this case is not replayed.
    pending.retain(|(i, fault)| {
        if !matches!(fault, Fault::Hang | Fault::Memory) {
            return true;
        }
        let Some(m) = tally.known_cause(fault, &applied) else { return true };
        let a = &applied[m];
        let trigger = Trigger {
            index: Some(m),
            description: format!("{} (a kind of mutation already known to do this)", a.description),
            signature: a.signature.clone(),
            saved: case_dir.clone(),
            stderr: None,
        };
        blamed.push((*i, fault.clone(), trigger));
        false
    });
    for m in 0..applied.len() {
        if pending.is_empty() {
            break;
        }
        let replay = tempfile::Builder::new().prefix("imgraph-fuzz-replay").tempdir().expect("temp dir");
        let replay_env = run_env(replay.path());
        let (alone_tree, alone) = case.build(corpus, replay.path(), &[m]);
        // One command per fault stands for the others that failed the same way: the commands read the same
        // tree, and a hang replayed by seven commands at once on two cores takes seven times as long.
        let mut representatives: Vec<(usize, Fault)> = Vec::new();
        for (i, fault) in &pending {
            if !representatives.iter().any(|(_, f)| f == fault) {
                representatives.push((*i, fault.clone()));
            }
        }
        let lists: Vec<Vec<String>> = representatives.iter().map(|(i, _)| cmds[*i].args_for(&alone_tree)).collect();
        let alone_outcomes = run_all(IMGRAPH, &lists, replay.path(), &replay_env, LIMITS);
        let reproduced: Vec<(&Fault, &str)> = representatives
            .iter()
            .zip(&alone_outcomes)
            .filter(|((_, fault), outcome)| judge(outcome, LIMITS).as_ref() == Some(fault))
            .map(|((_, fault), outcome)| (fault, outcome.stderr.as_str()))
            .collect();
        let saved = case_dir.join(format!("mutation-{m}"));
        let mut saved_files = false;
        let mut still = Vec::new();
        for (i, fault) in pending.drain(..) {
            let Some(&(_, stderr)) = reproduced.iter().find(|(f, _)| **f == fault) else {
                still.push((i, fault));
                continue;
            };
            if !saved_files {
                let listing = save_touched(&alone_tree, &alone[0].touched, &saved);
                let _ = fs::write(saved.join("mutation.txt"), format!("{}\n{listing}", alone[0].description));
                saved_files = true;
            }
            let a = &alone[0];
            let trigger = Trigger {
                index: Some(m),
                description: a.description.clone(),
                signature: a.signature.clone(),
                saved: saved.clone(),
                stderr: Some(stderr.to_owned()),
            };
            blamed.push((i, fault, trigger));
        }
        pending = still;
    }
    blamed.extend(pending.into_iter().map(|(i, f)| (i, f, whole(&case_dir))));

    let _ = writeln!(report, "blame:");
    let mut line = Vec::new();
    for (i, fault, trigger) in &blamed {
        let _ = writeln!(report, "  {}: {} <- {}", cmds[*i].label, fault.describe(), trigger.description);
        line.push(format!("{} {}", cmds[*i].kind(), fault.short()));
        let key = Distinct::key(fault, trigger);
        let distinct = tally.distinct.entry(key).or_insert_with(|| Distinct {
            fault: fault.clone(),
            commands: BTreeSet::new(),
            trigger: trigger.clone(),
            case_seed: seed,
            stderr: stderr_head(trigger.stderr.as_deref().unwrap_or(&outcomes[*i].stderr), 4),
            cases: BTreeSet::new(),
        });
        distinct.commands.insert(cmds[*i].kind().to_owned());
        distinct.cases.insert(seed);
    }
    fs::create_dir_all(&case_dir).expect("create the case directory");
    fs::write(case_dir.join("report.txt"), &report).expect("write the case report");
    line.dedup();
    println!(
        "case {index} {seed:#x}: FAIL in {:.2} s [{}]: {} (saved in {})",
        started.elapsed().as_secs_f64(),
        summary.join("; "),
        line.join(", "),
        case_dir.display()
    );
}

/// The corpus to fuzz: `IMGRAPH_FUZZ_CORPUS`, else production-images in `../shared` (required when `CI=true`).
fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("IMGRAPH_FUZZ_CORPUS").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    Some(shared_dir()?.join("corpora/production-images"))
}

/// Runs one case, or one mutation of it, keeping the tree and printing how to run each command by hand.
fn replay(corpus: &Corpus, settings: &Settings, seed: u64, only: Option<usize>) {
    let dir = settings.out.join(format!("replay-{seed:016x}{}", only.map_or(String::new(), |i| format!("-{i}"))));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the replay directory");
    let env = run_env(&dir);
    let mut case = Case::new(seed);
    let which: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..case.mutation_seeds.len()).collect(),
    };
    let (tree, applied) = case.build(corpus, &dir, &which);
    let all: Vec<usize> = (0..case.mutation_seeds.len()).collect();
    // The commands are the whole case's, as in the run that found the failure.
    let (_, all_applied) =
        if only.is_some() { case.build(corpus, &dir.join("whole"), &all) } else { (tree.clone(), applied.clone()) };
    let cmds = case.commands(corpus, &all_applied);
    let _ = fs::remove_dir_all(dir.join("whole"));
    println!("replaying case {seed:#x} in {}", dir.display());
    for a in &applied {
        println!("  mutation: {} [{}]", a.description, a.signature);
    }
    let lists: Vec<Vec<String>> = cmds.iter().map(|c| c.args_for(&tree)).collect();
    let outcomes = run_all(IMGRAPH, &lists, &dir, &env, LIMITS);
    let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut failed = Vec::new();
    for ((cmd, args), outcome) in cmds.iter().zip(&lists).zip(&outcomes) {
        let verdict = judge(outcome, LIMITS);
        println!(
            "{}: {} (exit {:?}, {:.2} s, {} kB)\n  cd {} && env -i {} {IMGRAPH} {}\n  {}",
            cmd.label,
            verdict.as_ref().map_or_else(|| "ok".to_owned(), Fault::describe),
            outcome.code,
            outcome.elapsed.as_secs_f64(),
            outcome.max_rss_kb,
            dir.display(),
            vars.join(" "),
            args.join(" "),
            stderr_head(&outcome.stderr, 5).replace('\n', "\n  ")
        );
        if let Some(fault) = verdict {
            failed.push(format!("{}: {}", cmd.label, fault.describe()));
        }
    }
    assert!(failed.is_empty(), "replay of {seed:#x} failed:\n{}", failed.join("\n"));
}

#[test]
fn mutated_definitions_never_panic_hang_or_blow_up() {
    let Some(source) = corpus_dir() else { return };
    let settings = Settings::from_env();
    let corpus = Corpus::load(&source);
    if let Some((seed, only)) = settings.replay {
        return replay(&corpus, &settings, seed, only);
    }
    println!(
        "imgraph mutation fuzzer: IMGRAPH_FUZZ_SEED={} IMGRAPH_FUZZ_CASES={}, {} images from {}, failures saved in {}",
        settings.seed,
        settings.cases,
        corpus.images.len(),
        source.display(),
        settings.out.display()
    );
    let started = Instant::now();
    let mut tally = Tally::default();
    for index in 0..settings.cases {
        if let Some(budget) = settings.budget
            && started.elapsed() > budget
            && !tally.distinct.is_empty()
        {
            println!("time budget of {} s spent and failures found: stopping after {index} cases", budget.as_secs());
            break;
        }
        run_case(&corpus, &settings, &mut tally, index, case_seed(settings.seed, index));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let kinds: Vec<String> = tally.failing_runs.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let mut summary = format!(
        "fuzz summary: seed {}, {}/{} cases, {} runs, {elapsed:.1} s ({:.2} s a case)\n\
         fuzz summary: failing runs by kind: {}\n\
         fuzz summary: max RSS {:.1} MB ({}); slowest run that finished {:.2} s ({})\n\
         fuzz summary: {} distinct failure(s); cases saved in {}\n",
        settings.seed,
        tally.cases,
        settings.cases,
        tally.runs,
        elapsed / tally.cases.max(1) as f64,
        if kinds.is_empty() { "none".into() } else { kinds.join(", ") },
        tally.max_rss.0 as f64 / 1024.0,
        tally.max_rss.1,
        tally.slowest.0.as_secs_f64(),
        tally.slowest.1,
        tally.distinct.len(),
        settings.out.display(),
    );
    // The list goes in the failure message only: cargo shows the captured output of a failing test too.
    print!("{summary}");
    for (number, distinct) in tally.distinct.values().enumerate() {
        summary.push_str(&distinct.report(number + 1));
    }
    assert!(tally.distinct.is_empty(), "the mutation fuzzer found failures:\n{summary}");
}

/// The verdicts themselves, on stand-in processes: the fuzzer must not pass because its judge is blind.
#[test]
fn the_judge_sees_signals_panics_hangs_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let env = run_env(dir.path());
    let limits = Limits { timeout: Duration::from_millis(500), wall_cap: Duration::from_secs(5), memory_kb: 50 * 1024 };
    let script = |s: &str| vec!["-c".to_owned(), s.to_owned()];
    let lists = [
        script("exit 3"),
        script("kill -ABRT $$"),
        script("echo \"thread 'main' panicked at src/x.rs:1:2:\" >&2; exit 101"),
        script("exit 7"),
        script("sleep 5"),
        script("while :; do :; done"),
        script("x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo ${#x}"),
    ];
    let outcomes = run_all("/bin/sh", &lists, dir.path(), &env, limits);
    let verdicts: Vec<Option<Fault>> = outcomes.iter().map(|o| judge(o, limits)).collect();
    assert_eq!(
        verdicts,
        [
            None,
            Some(Fault::Signal(libc::SIGABRT)),
            Some(Fault::Panic("src/x.rs:1:2".into())),
            Some(Fault::Exit(7)),
            Some(Fault::Hang),
            Some(Fault::Hang),
            Some(Fault::Memory)
        ]
    );
    assert!(outcomes[4].hang.as_ref().is_some_and(|h| h.starts_with("blocked")), "{:?}", outcomes[4].hang);
    assert!(outcomes[5].hang.as_ref().is_some_and(|h| h.starts_with("busy")), "{:?}", outcomes[5].hang);
}

#[test]
fn a_seed_always_makes_the_same_case() {
    let (a, b) = (Case::new(case_seed(7, 3)), Case::new(case_seed(7, 3)));
    assert_eq!(a.mutation_seeds, b.mutation_seeds);
    assert_ne!(Case::new(case_seed(7, 4)).mutation_seeds, a.mutation_seeds);
    assert_eq!(panic_location("x\nthread 'main' panicked at src/a.rs:3:9:\nboom"), Some("src/a.rs:3:9".into()));
    let dependency =
        "panicked at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/minijinja-2.0.0/src/x.rs:1:2:";
    assert_eq!(panic_location(dependency), Some("minijinja-2.0.0/src/x.rs:1:2".into()));
}
