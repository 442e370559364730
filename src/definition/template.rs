//! `Dockerfile.template` rendering: a Jinja2-compatible environment with docker-pkg's filters (stub, being written).

use std::path::{Path, PathBuf};

use crate::settings::Config;

/// Renders the templates of one tree; shared by all images (and threads) of a run.
#[derive(Debug)]
pub struct TemplateEngine {}

/// A template that cannot be rendered.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct TemplateError {
    /// The template file (or included file) at fault.
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl TemplateEngine {
    /// `known_images` are the full references `image_tag` can resolve to: the tree's labels and `base_images`.
    pub fn new(_config: &Config, _known_images: Vec<String>) -> Self {
        Self {}
    }

    /// Renders `<image_dir>/Dockerfile.template` exactly as docker-pkg does.
    pub fn render(&self, image_dir: &Path) -> Result<String, TemplateError> {
        Err(TemplateError { path: image_dir.join("Dockerfile.template"), line: None, message: "not implemented".into() })
    }
}
