//! Problems found while reading a tree: one type for every warning and error, each naming its file (and line)
//! and, where it is known, the image it concerns. An error concerns that image only: the image cannot be
//! built, what depends on it is skipped, and the rest of the tree goes on.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never changes the exit code.
    Warning,
    /// The image it names cannot be built (or, without an image, a directory could not be read as one).
    Error,
}

/// One problem, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file (or directory) the problem is in.
    pub path: PathBuf,
    /// 1-based line in `path`, where there is one.
    pub line: Option<usize>,
    /// The image concerned, when its name is known.
    pub image: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, path.into(), message.into())
    }

    pub fn warning(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, path.into(), message.into())
    }

    fn new(severity: Severity, path: PathBuf, message: String) -> Self {
        Self { severity, path, line: None, image: None, message }
    }

    #[must_use]
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    #[must_use]
    pub fn for_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// `check` fails on these; the image named cannot be built.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The location as `path:line`, or just `path`.
    pub fn location(&self) -> Location<'_> {
        Location { path: &self.path, line: self.line }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: {}: {}", self.location(), self.message)
    }
}

/// `path:line` for messages.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub path: &'a Path,
    pub line: Option<usize>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}
