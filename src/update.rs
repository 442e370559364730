//! `update`: a new top changelog entry for an image and for every image that depends on it, transitively,
//! so that the next `build` rebuilds them all.
//!
//! docker-pkg's behaviour with its bugs fixed: NAME is an exact name (a glob only when it has glob
//! characters), dependents come from the tree's graph (so parents outside the tree are fine), and it is all or
//! nothing: every new changelog is computed and checked before the first file is written, and each file is
//! replaced atomically.
//!
//! Safe to run twice at once: a run holds a lock on the tree's root from before it reads the changelogs until
//! it has written them ([`TreeLock`]). A new file is created with the mode and owner of the one it replaces
//! before anything is written into it, synced, renamed over it, and the directory is synced: a read-only
//! changelog stays read-only. A changelog with several hard links is not updated (the update then writes
//! nothing): renaming over it would split the links.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use globset::Glob;

use crate::config::Config;
use crate::definition::changelog::{self, NewEntry};
use crate::definition::version::{BumpError, Version};
use crate::graph::Graph;
use crate::report;
use crate::tree::{ImageId, Tree};

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
    #[error("{}: cannot lock the tree against another update: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
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
    #[error(
        "{}: it has {links} hard links, and replacing it would split them; give it a single link to update it",
        path.display()
    )]
    HardLinked { path: PathBuf, links: u64 },
}

/// The images NAME designates, sorted; `glob` says whether NAME was a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub images: Vec<ImageId>,
    pub glob: bool,
}

/// Resolves NAME: an exact name, or (only when it holds glob characters) a glob over names.
pub fn matching(tree: &Tree, name: &str) -> Result<Matched, UpdateError> {
    if !name.contains(['*', '?', '[', ']', '{', '}']) {
        return match tree.get(name) {
            Some(i) => Ok(Matched { images: vec![i], glob: false }),
            None => Err(UpdateError::UnknownImage {
                name: name.to_owned(),
                root: tree.root.clone(),
                suggestions: report::close_names(name, tree.images().map(|(_, i)| i.name.as_str())),
            }),
        };
    }
    let matcher = Glob::new(name)?.compile_matcher();
    let images: Vec<ImageId> = tree.images().filter(|(_, i)| matcher.is_match(&i.name)).map(|(id, _)| id).collect();
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
    pub name: String,
    /// The changelog, as the tree names it.
    pub path: PathBuf,
    pub old_version: Version,
    pub new_version: Version,
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

/// What the new entries say, and how the named images get their version.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The pattern given, for messages.
    pub pattern: &'a str,
    /// The named images' reasons: one for all, or one each (`--outdated`). A dependent's entry names its
    /// updated parents and carries their reasons.
    pub reasons: Reasons<'a>,
    /// The named image's new version, instead of an automatic bump (one exact name only).
    pub version: Option<&'a str>,
}

/// The reason of each named image.
#[derive(Debug, Clone, Copy)]
pub enum Reasons<'a> {
    Same(&'a str),
    Each(&'a BTreeMap<ImageId, String>),
}

impl Reasons<'_> {
    fn of(&self, id: ImageId) -> &str {
        match self {
            Reasons::Same(reason) => reason,
            Reasons::Each(reasons) => reasons.get(&id).map_or("", String::as_str),
        }
    }
}

/// Computes every new changelog of the update and checks it; no file is touched. All the images that cannot
/// be updated are reported together.
pub fn plan(
    tree: &Tree,
    graph: &Graph,
    matched: &Matched,
    request: &Request<'_>,
    author: &Author,
    date: &str,
) -> Result<Plan, UpdateError> {
    if matched.images.iter().any(|&id| request.reasons.of(id).trim().is_empty()) {
        return Err(UpdateError::EmptyReason);
    }
    if request.version.is_some() && matched.glob {
        return Err(UpdateError::VersionWithGlob { pattern: request.pattern.to_owned() });
    }
    let named: BTreeSet<ImageId> = matched.images.iter().copied().collect();
    // Which named images each dependent descends from, to name them (and their reasons) in its entry.
    let mut parents: BTreeMap<ImageId, Vec<ImageId>> = BTreeMap::new();
    for &image in &named {
        for dependent in graph.with_descendants(&BTreeSet::from([image])) {
            if !named.contains(&dependent) {
                parents.entry(dependent).or_default().push(image);
            }
        }
    }

    let mut changes = Vec::new();
    let mut problems = Vec::new();
    for &index in graph.order.iter().filter(|i| named.contains(i) || parents.contains_key(i)) {
        let refresh = parents.get(&index).map(|ids| {
            let names: Vec<&str> = ids.iter().map(|&id| tree[id].name.as_str()).collect();
            let mut reasons: Vec<&str> = ids.iter().map(|&id| request.reasons.of(id)).collect();
            reasons.dedup();
            refresh_reason(&names, &reasons.join("\n"))
        });
        let reason = refresh.as_deref().unwrap_or_else(|| request.reasons.of(index));
        let version = if refresh.is_none() { request.version } else { None };
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
    index: ImageId,
    reason: &str,
    version: Option<&str>,
    author: &Author,
    date: &str,
) -> Result<Change, ImageError> {
    let image = &tree[index];
    let path = image.changelog_path();
    let read_error = |source| ImageError::Read { path: path.clone(), source };
    let target = fs::canonicalize(&path).map_err(read_error)?;
    let metadata = fs::metadata(&target).map_err(read_error)?;
    if metadata.nlink() > 1 {
        return Err(ImageError::HardLinked { path, links: metadata.nlink() });
    }
    let old = crate::files::read(&target, crate::files::CHANGELOG_LIMIT)
        .map_err(|e| read_error(io::Error::other(e.to_string())))?;
    let entry_error = |message: String| ImageError::Entry { path: path.clone(), message };
    // The version to bump is the changelog's own, read from the bytes about to be kept: the scanned tag may
    // carry a run's nightly suffix, and the file may have changed since the scan.
    let current = changelog::top_entry_from(&path, old.as_slice())
        .map_err(|e| entry_error(format!("line {}: {}", e.line.unwrap_or(1), e.message)))?
        .version;
    let new_version = match version {
        Some(wanted) => check_explicit_version(wanted, &current).map_err(|why| ImageError::Version {
            path: path.clone(),
            version: wanted.to_owned(),
            why,
        })?,
        None => current.bump(&tree.config.update_id).map_err(|source| ImageError::Bump {
            path: path.clone(),
            version: current.to_string(),
            source,
        })?,
    };
    // Keep the file's line ending (a CRLF changelog stays CRLF).
    let newline =
        if old.iter().position(|&b| b == b'\n').is_some_and(|i| i > 0 && old[i - 1] == b'\r') { "\r\n" } else { "\n" };
    let entry = changelog::format_entry(
        &NewEntry {
            package: &image.name,
            version: new_version.as_str(),
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
    Ok(Change { name: image.name.clone(), path, old_version: current, new_version, refresh: false, entry, old, target })
}

/// `--version` must be a Debian version, a legal Docker tag, and sort after the current one (an equal or lower
/// tag may already be in the registry, and the image would never be rebuilt).
fn check_explicit_version(wanted: &str, current: &Version) -> Result<Version, String> {
    let wanted = Version::parse(wanted).map_err(|why| format!("not a Debian version: {why}"))?;
    if let Some(why) = wanted.tag_problem() {
        return Err(why);
    }
    if wanted.cmp_dpkg(current) != std::cmp::Ordering::Greater {
        return Err(format!("it does not sort after the current version `{current}`"));
    }
    Ok(wanted)
}

impl Plan {
    /// Writes every changelog: each new file is first staged beside its target (with its mode and owner), and
    /// only when all of them are, each is renamed over its target and the directories are synced. A failure
    /// before the renames leaves every file as it was; a failed rename (unexpected) puts back the files already
    /// replaced.
    pub fn write(&self) -> Result<(), UpdateError> {
        let mut staged: Vec<tempfile::NamedTempFile> = Vec::with_capacity(self.changes.len());
        for change in &self.changes {
            let mut content = change.entry.clone().into_bytes();
            content.extend_from_slice(&change.old);
            match stage(&change.target, &content) {
                Ok(temp) => staged.push(temp),
                Err(source) => {
                    return Err(UpdateError::Write { path: change.path.clone(), source, written: Vec::new() });
                }
            }
        }
        for (i, (change, temp)) in self.changes.iter().zip(staged).enumerate() {
            if let Err(e) = temp.persist(&change.target) {
                let written = self.changes[..i]
                    .iter()
                    .filter(|done| {
                        stage(&done.target, &done.old)
                            .and_then(|t| t.persist(&done.target).map_err(|e| e.error))
                            .is_err()
                    })
                    .map(|done| done.path.clone())
                    .collect();
                return Err(UpdateError::Write { path: change.path.clone(), source: e.error, written });
            }
        }
        let dirs: BTreeSet<&Path> = self.changes.iter().filter_map(|c| c.target.parent()).collect();
        for dir in dirs {
            // The renames are only durable once their directory is on disk.
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|source| UpdateError::Write {
                path: dir.to_owned(),
                source,
                written: self.changes.iter().map(|c| c.path.clone()).collect(),
            })?;
        }
        Ok(())
    }
}

/// Writes `content` to a new temp file beside `target`, created with `target`'s permissions and owner before
/// anything is written into it, and synced to disk.
fn stage(target: &Path, content: &[u8]) -> io::Result<tempfile::NamedTempFile> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let metadata = fs::metadata(target)?;
    let name = target.file_name().map_or_else(|| "changelog".into(), |n| n.to_string_lossy().into_owned());
    // Created owner-only (0600), then given the target's mode: never more open than either on the way.
    let mut temp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".imgraph-update").tempfile_in(dir)?;
    let file = temp.as_file();
    if (file.metadata()?.uid(), file.metadata()?.gid()) != (metadata.uid(), metadata.gid()) {
        std::os::unix::fs::fchown(file, Some(metadata.uid()), Some(metadata.gid()))?;
    }
    file.set_permissions(metadata.permissions())?;
    temp.write_all(content)?;
    temp.as_file().sync_all()?;
    Ok(temp)
}

/// Holds an exclusive lock on a tree's root directory for as long as it lives: two `update` runs on one tree
/// take turns, the second reading what the first wrote.
#[derive(Debug)]
pub struct TreeLock {
    _dir: fs::File,
}

impl TreeLock {
    /// Locks `root`, calling `waiting` once if another run holds it (then waiting for it).
    pub fn acquire(root: &Path, waiting: impl FnOnce()) -> Result<Self, UpdateError> {
        let error = |source| UpdateError::Lock { path: root.to_owned(), source };
        let dir = fs::File::open(root).map_err(error)?;
        match dir.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waiting();
                dir.lock().map_err(error)?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(error(e)),
        }
        Ok(Self { _dir: dir })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

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
        let current = Version::new("1.0");
        assert!(check_explicit_version("1.1", &current).is_ok());
        assert!(check_explicit_version("1.0", &current).unwrap_err().contains("does not sort after"));
        assert!(check_explicit_version("0.9", &current).unwrap_err().contains("does not sort after"));
        assert!(check_explicit_version("1.1~rc1", &current).unwrap_err().contains("not a valid Docker tag"));
        assert!(check_explicit_version("1.1 beta", &current).unwrap_err().contains("not a Debian version"));
    }

    #[test]
    fn stage_keeps_mode_and_owner_and_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("changelog");
        fs::write(&target, "old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        // Another owner, as root can set it: the staged file must carry it too.
        let _ = std::os::unix::fs::chown(&target, Some(65534), Some(65534));
        let wanted = fs::metadata(&target).unwrap();
        let temp = stage(&target, b"new").unwrap();
        let staged = fs::metadata(temp.path()).unwrap();
        assert_eq!(staged.permissions().mode() & 0o777, 0o640);
        assert_eq!((staged.uid(), staged.gid()), (wanted.uid(), wanted.gid()));
        assert_eq!(fs::read(temp.path()).unwrap(), b"new");
        let other = stage(&target, b"other").unwrap();
        assert_ne!(other.path(), temp.path());
        assert_eq!(fs::read(&target).unwrap(), b"old");
    }

    #[test]
    fn the_lock_makes_a_second_run_wait() {
        let dir = tempfile::tempdir().unwrap();
        let first = TreeLock::acquire(dir.path(), || panic!("nobody holds it yet")).unwrap();
        let root = dir.path().to_owned();
        let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = waited.clone();
        let second = std::thread::spawn(move || {
            let _lock = TreeLock::acquire(&root, || flag.store(true, std::sync::atomic::Ordering::SeqCst)).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!second.is_finished(), "the second run must wait");
        drop(first);
        second.join().unwrap();
        assert!(waited.load(std::sync::atomic::Ordering::SeqCst));
    }
}
