//! `control` files: the `Build-Depends` and `Depends` an image declares (stub, being written).

use std::path::{Path, PathBuf};

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

/// A control file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ControlError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses every paragraph of `path`.
pub fn read_control(path: &Path) -> Result<Vec<Dependency>, ControlError> {
    Err(ControlError { path: path.to_owned(), line: None, message: "not implemented".into() })
}
