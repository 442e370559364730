//! `update`: a new top changelog entry for an image and for every image that depends on it, transitively,
//! so that the next `build` rebuilds them all.
//!
//! docker-pkg's behaviour with its bugs fixed: NAME is an exact name (a glob only when it has glob
//! characters), dependents come from the tree's graph (so parents outside the tree are fine), and it is all or
//! nothing: every new changelog is computed and checked before the first file is written, and each file is
//! replaced atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use globset::Glob;

use crate::definition::changelog::{self, NewEntry};
use crate::definition::version::{self, BumpError};
use crate::discover::CHANGELOG;
use crate::exit;
use crate::graph::Graph;
use crate::reference;
use crate::report;
use crate::settings::Config;
use crate::timestamp;
use crate::tree::Tree;

/// What the user asked for.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// An exact image name, or a glob over names when it has glob characters.
    pub name: &'a str,
    /// The change text; may span several lines.
    pub reason: &'a str,
    /// The named image's new version, instead of an automatic bump.
    pub version: Option<&'a str>,
    /// Print the entries, write nothing.
    pub dry_run: bool,
}

/// Why nothing was updated (or, for [`UpdateError::Write`], why the update stopped).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no image named `{name}` in {}{}", root.display(), report::did_you_mean(suggestions))]
    UnknownImage { name: String, root: PathBuf, suggestions: Vec<String> },
    #[error("no image name in {} matches `{pattern}`", root.display())]
    NoMatch { pattern: String, root: PathBuf },
    #[error("invalid image name pattern: {0}")]
    Pattern(#[from] globset::Error),
    #[error("--version needs one exact image name, but `{pattern}` is a glob")]
    VersionWithGlob { pattern: String },
    #[error("--reason is empty: the new changelog entries need at least one line of text")]
    EmptyReason,
    #[error("nothing was written; {} cannot be updated:\n{}", report::count(.0.len(), "changelog"), lines(.0))]
    NotUpdated(Vec<ImageError>),
    #[error("{}: cannot write: {source}{}", path.display(), written_note(written))]
    Write { path: PathBuf, source: io::Error, written: Vec<PathBuf> },
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

impl UpdateError {
    /// The process exit code for this error (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            UpdateError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::SUCCESS,
            UpdateError::Write { .. } | UpdateError::Output(_) => exit::FAILURE,
            _ => exit::INPUT,
        }
    }
}

fn lines(problems: &[ImageError]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

fn written_note(written: &[PathBuf]) -> String {
    if written.is_empty() {
        " (nothing was written)".into()
    } else {
        let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        format!(" (these were written and could not be restored: {})", files.join(", "))
    }
}

/// Why one image's changelog cannot be updated; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: cannot bump version `{version}`: {source}", path.display())]
    Bump { path: PathBuf, version: String, source: BumpError },
    #[error("{}: --version `{version}`: {why}", path.display())]
    Version { path: PathBuf, version: String, why: String },
    #[error("{}: cannot add an entry: {message}", path.display())]
    Entry { path: PathBuf, message: String },
}

/// The images NAME designates, sorted; `glob` says whether NAME was a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub images: Vec<usize>,
    pub glob: bool,
}

/// Resolves NAME: an exact name, or (only when it holds glob characters) a glob over names.
pub fn matching(tree: &Tree, name: &str) -> Result<Matched, UpdateError> {
    if !name.contains(['*', '?', '[', ']', '{', '}']) {
        return match tree.index_of(name) {
            Some(i) => Ok(Matched { images: vec![i], glob: false }),
            None => Err(UpdateError::UnknownImage {
                name: name.to_owned(),
                root: tree.root.clone(),
                suggestions: report::close_names(name, tree.images.iter().map(|i| i.name.as_str())),
            }),
        };
    }
    let matcher = Glob::new(name)?.compile_matcher();
    let images: Vec<usize> =
        tree.images.iter().enumerate().filter(|(_, i)| matcher.is_match(&i.name)).map(|(i, _)| i).collect();
    if images.is_empty() {
        return Err(UpdateError::NoMatch { pattern: name.to_owned(), root: tree.root.clone() });
    }
    Ok(Matched { images, glob: true })
}

/// Who signs the new entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

impl Author {
    /// docker-pkg's order: `DEBFULLNAME`/`DEBEMAIL`, then `git config --get user.name`/`user.email` (run in
    /// `dir`, so the tree's own repository config counts), then the config's `fallback_author`/`fallback_email`.
    pub fn resolve(config: &Config, dir: &Path) -> Self {
        let env = |key: &str| std::env::var(key).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let git = |key: &str| {
            let output = Command::new("git")
                .args(["config", "--get", key])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            let value = String::from_utf8(output.stdout).ok()?.trim().to_owned();
            (output.status.success() && !value.is_empty()).then_some(value)
        };
        // dch accepts DEBEMAIL="Name <address>"; docker-pkg would write it inside another pair of brackets.
        let (env_name, env_email) = match env("DEBEMAIL") {
            Some(value) => match value.split_once('<') {
                Some((name, rest)) => {
                    let name = name.trim();
                    (
                        Some(name.to_owned()).filter(|n| !n.is_empty()),
                        Some(rest.trim_end_matches('>').trim().to_owned()),
                    )
                }
                None => (None, Some(value)),
            },
            None => (None, None),
        };
        let name = env("DEBFULLNAME")
            .or(env_name)
            .or_else(|| git("user.name"))
            .unwrap_or_else(|| config.fallback_author.clone());
        let email = env_email.or_else(|| git("user.email")).unwrap_or_else(|| config.fallback_email.clone());
        Self { name, email }
    }
}

/// One changelog to rewrite.
#[derive(Debug, Clone)]
pub struct Change {
    /// Index in `Tree::images`.
    pub image: usize,
    pub name: String,
    /// The changelog, as the tree names it.
    pub path: PathBuf,
    pub old_version: String,
    pub new_version: String,
    /// True for a dependent ("Refresh for update in parent image …").
    pub refresh: bool,
    /// The entry added on top, exactly as written.
    pub entry: String,
    /// The file's whole previous content, kept byte for byte after the entry.
    old: Vec<u8>,
    /// The file actually replaced (a symlinked changelog is replaced at its target, keeping the link).
    target: PathBuf,
}

/// Every change of one update, in build order (parents first).
#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// Computes every new changelog of the update and checks it; no file is touched. All the images that cannot
/// be updated are reported together.
pub fn plan(
    tree: &Tree,
    graph: &Graph,
    matched: &Matched,
    options: &Options<'_>,
    author: &Author,
    date: &str,
) -> Result<Plan, UpdateError> {
    if options.reason.trim().is_empty() {
        return Err(UpdateError::EmptyReason);
    }
    if options.version.is_some() && matched.glob {
        return Err(UpdateError::VersionWithGlob { pattern: options.name.to_owned() });
    }
    let named: BTreeSet<usize> = matched.images.iter().copied().collect();
    // Which named images each dependent descends from, to name them in its entry.
    let mut parents: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for &image in &named {
        for dependent in graph.with_descendants(&BTreeSet::from([image])) {
            if !named.contains(&dependent) {
                parents.entry(dependent).or_default().push(&tree.images[image].name);
            }
        }
    }

    let mut changes = Vec::new();
    let mut problems = Vec::new();
    for &index in graph.order.iter().filter(|i| named.contains(i) || parents.contains_key(i)) {
        let refresh = parents.get(&index).map(|names| refresh_reason(names, options.reason));
        let reason = refresh.as_deref().unwrap_or(options.reason);
        let version = if refresh.is_none() { options.version } else { None };
        match change(tree, index, reason, version, author, date) {
            Ok(mut change) => {
                change.refresh = refresh.is_some();
                changes.push(change);
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() { Ok(Plan { changes }) } else { Err(UpdateError::NotUpdated(problems)) }
}

/// docker-pkg's text for a dependent; with a glob, every named ancestor is listed.
fn refresh_reason(parents: &[&str], reason: &str) -> String {
    match parents {
        [one] => format!("Refresh for update in parent image {one}:\n{reason}"),
        many => format!("Refresh for update in parent images {}:\n{reason}", many.join(", ")),
    }
}

/// One image's new changelog.
fn change(
    tree: &Tree,
    index: usize,
    reason: &str,
    version: Option<&str>,
    author: &Author,
    date: &str,
) -> Result<Change, ImageError> {
    let image = &tree.images[index];
    let path = image.dir.join(CHANGELOG);
    let read_error = |source| ImageError::Read { path: path.clone(), source };
    let old = fs::read(&path).map_err(read_error)?;
    let target = fs::canonicalize(&path).map_err(read_error)?;
    let entry_error = |message: String| ImageError::Entry { path: path.clone(), message };
    // The version to bump is the changelog's own, read from the bytes about to be kept: the scanned tag may
    // carry a run's nightly suffix, and the file may have changed since the scan.
    let current = changelog::top_entry_from(&path, old.as_slice())
        .map_err(|e| entry_error(format!("line {}: {}", e.line.unwrap_or(1), e.message)))?
        .version;
    let new_version = match version {
        Some(wanted) => {
            check_explicit_version(wanted, &current).map_err(|why| ImageError::Version {
                path: path.clone(),
                version: wanted.to_owned(),
                why,
            })?;
            wanted.to_owned()
        }
        None => version::bump(&current, &tree.config.update_id).map_err(|source| ImageError::Bump {
            path: path.clone(),
            version: current.clone(),
            source,
        })?,
    };
    // Keep the file's line ending (a CRLF changelog stays CRLF).
    let newline =
        if old.iter().position(|&b| b == b'\n').is_some_and(|i| i > 0 && old[i - 1] == b'\r') { "\r\n" } else { "\n" };
    let entry = changelog::format_entry(
        &NewEntry {
            package: &image.name,
            version: &new_version,
            distribution: &tree.config.distribution,
            reason,
            author: &author.name,
            email: &author.email,
            date,
        },
        newline,
    );
    // The file must still name the image and carry the new version when scanned: check it as the scan would.
    let top = changelog::top_entry_from(&path, io::Cursor::new(entry.as_bytes()))
        .map_err(|e| entry_error(format!("line {}: {}", e.line.unwrap_or(1), e.message)))?;
    if top.package != image.name || top.version != new_version {
        return Err(entry_error(format!("it reads back as {} {}", top.package, top.version)));
    }
    Ok(Change {
        image: index,
        name: image.name.clone(),
        path,
        old_version: current,
        new_version,
        refresh: false,
        entry,
        old,
        target,
    })
}

/// `--version` must be a Debian version, a legal Docker tag, and sort after the current one (an equal or lower
/// tag may already be in the registry, and the image would never be rebuilt).
fn check_explicit_version(wanted: &str, current: &str) -> Result<(), String> {
    changelog::check_version(wanted).map_err(|why| format!("not a Debian version: {why}"))?;
    reference::check_tag(wanted)?;
    if version::compare(wanted, current) != std::cmp::Ordering::Greater {
        return Err(format!("it does not sort after the current version `{current}`"));
    }
    Ok(())
}

impl Plan {
    /// Writes every changelog: each new file is first written beside its target (same permissions), and only
    /// when all of them are, each is renamed over its target. A failure before the renames leaves every file
    /// as it was; a failed rename (unexpected) puts back the files already replaced.
    pub fn write(&self) -> Result<(), UpdateError> {
        let mut staged: Vec<PathBuf> = Vec::with_capacity(self.changes.len());
        for change in &self.changes {
            let mut content = change.entry.clone().into_bytes();
            content.extend_from_slice(&change.old);
            match stage(&change.target, &content) {
                Ok(temp) => staged.push(temp),
                Err(source) => {
                    remove_all(&staged);
                    return Err(UpdateError::Write { path: change.path.clone(), source, written: Vec::new() });
                }
            }
        }
        for (i, (change, temp)) in self.changes.iter().zip(&staged).enumerate() {
            if let Err(source) = fs::rename(temp, &change.target) {
                remove_all(&staged[i..]);
                let written = self.changes[..i]
                    .iter()
                    .filter(|done| stage(&done.target, &done.old).and_then(|t| fs::rename(t, &done.target)).is_err())
                    .map(|done| done.path.clone())
                    .collect();
                return Err(UpdateError::Write { path: change.path.clone(), source, written });
            }
        }
        Ok(())
    }
}

/// Writes `content` to a new temp file beside `target`, with `target`'s permissions, synced to disk.
fn stage(target: &Path, content: &[u8]) -> io::Result<PathBuf> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let file_name = target.file_name().map_or_else(|| CHANGELOG.into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{file_name}.imgraph-update-{}", std::process::id()));
    let result = (|| {
        let permissions = fs::metadata(target)?.permissions();
        let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(content)?;
        file.set_permissions(permissions)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            // Only remove a temp file this call created: `create_new` failing means it belongs to someone else.
            if e.kind() != io::ErrorKind::AlreadyExists {
                let _ = fs::remove_file(&temp);
            }
            Err(e)
        }
    }
}

fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

/// The whole command on a scanned tree: resolve NAME, plan, print (`--dry-run`) or write, and summarise on
/// stderr. Returns the exit code.
pub fn run(tree: &Tree, graph: &Graph, options: &Options<'_>, out: &mut impl Write) -> Result<u8, UpdateError> {
    let matched = matching(tree, options.name)?;
    if matched.glob {
        let names: Vec<&str> = matched.images.iter().map(|&i| tree.images[i].name.as_str()).collect();
        eprintln!("`{}` matches {}: {}", options.name, report::count(names.len(), "image"), names.join(", "));
    }
    let author = Author::resolve(&tree.config, &tree.root);
    let date = timestamp::rfc2822_local(SystemTime::now());
    let plan = plan(tree, graph, &matched, options, &author, &date)?;
    if options.dry_run {
        for change in &plan.changes {
            write!(out, "==> {} <==\n{}", change.path.display(), change.entry)?;
        }
        out.flush()?;
    } else {
        plan.write()?;
    }
    eprint!("{}", summary(&plan, options.dry_run));
    Ok(exit::SUCCESS)
}

/// `updated 3 changelogs:` and one aligned line per image: name, old -> new, and whether it is a refresh.
pub fn summary(plan: &Plan, dry_run: bool) -> String {
    let count = report::count(plan.changes.len(), "changelog");
    let mut text = if dry_run {
        format!("would update {count} (dry run, nothing written):\n")
    } else {
        format!("updated {count}:\n")
    };
    let name_width = plan.changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let old_width = plan.changes.iter().map(|c| c.old_version.len()).max().unwrap_or(0);
    for c in &plan.changes {
        let why = if c.refresh { "  (parent updated)" } else { "" };
        let _ = writeln!(text, "  {:<name_width$}  {:<old_width$} -> {}{why}", c.name, c.old_version, c.new_version);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_docker_pkg_s_byte_for_byte() {
        // Spec §8.2, as docker-pkg wrote it for a child (date format aside: imgraph writes `date -R`'s).
        let entry = changelog::format_entry(
            &NewEntry {
                package: "dpr-child",
                version: "2.0-s1",
                distribution: "wikimedia",
                reason: &refresh_reason(&["dpr-base"], "Security fix\nsecond line"),
                author: "Rita Researcher",
                email: "rita@example.org",
                date: "Sun, 22 Nov 2026 06:43:38 +0000",
            },
            "\n",
        );
        assert_eq!(
            entry,
            "dpr-child (2.0-s1) wikimedia; urgency=high\n\n   Refresh for update in parent image dpr-base:\n   \
             Security fix\n   second line\n\n -- Rita Researcher <rita@example.org>  Sun, 22 Nov 2026 06:43:38 \
             +0000\n\n"
        );
    }

    #[test]
    fn an_empty_update_id_is_docker_pkg_s_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        fs::write(&path, "update_id:\n").unwrap();
        assert_eq!(Config::load(Some(&path), None, None).unwrap().update_id, "");
        fs::write(&path, "update_id: wmf\n").unwrap();
        assert_eq!(Config::load(Some(&path), None, None).unwrap().update_id, "wmf");
        fs::write(&path, "registry: r\n").unwrap();
        assert_eq!(Config::load(Some(&path), None, None).unwrap().update_id, "s");
    }

    #[test]
    fn several_named_parents_are_all_named() {
        assert_eq!(refresh_reason(&["a", "b"], "x"), "Refresh for update in parent images a, b:\nx");
    }

    #[test]
    fn explicit_versions_are_checked() {
        assert!(check_explicit_version("1.1", "1.0").is_ok());
        assert!(check_explicit_version("1.0", "1.0").unwrap_err().contains("does not sort after"));
        assert!(check_explicit_version("0.9", "1.0").unwrap_err().contains("does not sort after"));
        assert!(check_explicit_version("1.1~rc1", "1.0").unwrap_err().contains("not a valid Docker tag"));
        assert!(check_explicit_version("1.1 beta", "1.0").unwrap_err().contains("not a Debian version"));
    }

    #[test]
    fn stage_keeps_permissions_and_never_clobbers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("changelog");
        fs::write(&target, "old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let temp = stage(&target, b"new").unwrap();
        assert_eq!(fs::metadata(&temp).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fs::read(&temp).unwrap(), b"new");
        // A second stage of the same target by this process finds the temp file taken, and leaves it alone.
        assert_eq!(stage(&target, b"other").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&temp).unwrap(), b"new");
        assert_eq!(fs::read(&target).unwrap(), b"old");
    }
}
