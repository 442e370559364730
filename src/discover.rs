//! Discovery: walk a tree and find the image directories (those holding both a `Dockerfile.template` and a
//! `changelog`), as docker-pkg does, without following symlinked directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::diagnostic::Diagnostic;

/// The template file that makes a directory an image (with [`CHANGELOG`]).
pub const TEMPLATE: &str = "Dockerfile.template";
/// The changelog file that names and versions an image.
pub const CHANGELOG: &str = "changelog";
/// The optional file declaring dependencies.
pub const CONTROL: &str = "control";

/// What a walk found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Image directories, sorted by path.
    pub image_dirs: Vec<PathBuf>,
    /// Directories with only one of the two files, and unreadable directories.
    pub diagnostics: Vec<Diagnostic>,
}

/// The tree itself cannot be walked.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{}: no such directory", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: cannot read directory: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
}

#[derive(Default)]
struct Found {
    template: bool,
    changelog: bool,
}

/// Walks `root` and returns its image directories.
pub fn discover(root: &Path) -> Result<Discovery, DiscoverError> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(DiscoverError::NotADirectory { path: root.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DiscoverError::NotFound { path: root.to_owned() });
        }
        Err(source) => return Err(DiscoverError::Unreadable { path: root.to_owned(), source }),
    }
    let mut found: BTreeMap<PathBuf, Found> = BTreeMap::new();
    let mut diagnostics = Vec::new();
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_owned();
                if path == root {
                    let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk failed"));
                    return Err(DiscoverError::Unreadable { path, source });
                }
                diagnostics.push(Diagnostic::error(path, format!("cannot read: {}", io_reason(&e))));
                continue;
            }
        };
        // A symlinked `changelog` still counts (reading it reports a dangling or looping link by name); a
        // real directory of that name does not.
        if entry.file_type().is_dir() {
            continue;
        }
        let Some(dir) = entry.path().parent() else { continue };
        let name = entry.file_name();
        if name == TEMPLATE {
            found.entry(dir.to_owned()).or_default().template = true;
        } else if name == CHANGELOG {
            found.entry(dir.to_owned()).or_default().changelog = true;
        }
    }
    let mut image_dirs = Vec::new();
    for (dir, found) in found {
        match (found.template, found.changelog) {
            (true, true) => image_dirs.push(dir),
            (true, false) => {
                diagnostics.push(Diagnostic::warning(dir, format!("ignored: it has a {TEMPLATE} but no {CHANGELOG}")))
            }
            (false, true) => {
                diagnostics.push(Diagnostic::warning(dir, format!("ignored: it has a {CHANGELOG} but no {TEMPLATE}")))
            }
            (false, false) => {}
        }
    }
    Ok(Discovery { image_dirs, diagnostics })
}

fn io_reason(e: &walkdir::Error) -> String {
    match e.io_error() {
        Some(io) => io.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_images_and_warns_about_half_images() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, files) in [
            ("a", &[TEMPLATE, CHANGELOG][..]),
            ("a/inner", &[TEMPLATE, CHANGELOG][..]),
            ("only-template", &[TEMPLATE][..]),
            ("only-changelog", &[CHANGELOG][..]),
            ("neither", &["README"][..]),
        ] {
            std::fs::create_dir_all(root.join(path)).unwrap();
            for file in files {
                std::fs::write(root.join(path).join(file), "").unwrap();
            }
        }
        std::os::unix::fs::symlink(root.join("a"), root.join("link-to-a")).unwrap();
        let discovery = discover(root).unwrap();
        assert_eq!(discovery.image_dirs, vec![root.join("a"), root.join("a/inner")]);
        let messages: Vec<_> = discovery.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("only-changelog: ignored: it has a changelog but no Dockerfile.template"));
        assert!(messages[1].contains("only-template: ignored: it has a Dockerfile.template but no changelog"));
    }

    #[test]
    fn missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = discover(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, DiscoverError::NotFound { .. }));
    }
}
