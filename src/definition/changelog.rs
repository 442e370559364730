//! The top entry of a Debian `changelog`: the image's name and version (stub, being written).

use std::path::{Path, PathBuf};

/// The first (topmost) entry of a changelog, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    /// Package name: the image's short name.
    pub package: String,
    /// Version string exactly as written: the image's tag.
    pub version: String,
    /// 1-based line of the entry's header.
    pub line: usize,
}

/// A changelog that cannot be read or whose top entry is malformed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ChangelogError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Reads only as much of `path` as the top entry needs.
pub fn read_top_entry(path: &Path) -> Result<TopEntry, ChangelogError> {
    Err(ChangelogError { path: path.to_owned(), line: None, message: "not implemented".into() })
}
