//! `--since REF`: the images whose files differ between a git revision and the working tree, plus everything
//! that depends on them. An image's files are everything under its directory, the files its template includes
//! (wherever they are in the tree), and what the symbolic links of its build context lead to. Uncommitted and
//! untracked changes count, as they are what a build would send.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::analysis::Analysis;
use crate::engine;
use crate::tree::ImageId;

/// Why `--since` cannot say what changed.
#[derive(Debug, thiserror::Error)]
#[error("--since {reference}: {message}")]
pub struct SinceError {
    pub reference: String,
    pub message: String,
}

/// The images changed since `reference` (a git revision), and their dependents.
pub fn changed(analysis: &Analysis, reference: &str) -> Result<BTreeSet<ImageId>, SinceError> {
    let fail = |message: String| SinceError { reference: reference.to_owned(), message };
    let root = &analysis.tree.canonical_root;
    let top = PathBuf::from(git(root, &["rev-parse", "--show-toplevel"]).map_err(fail)?.trim_end());
    let top = top.canonicalize().unwrap_or(top);
    // `--` ends the revisions: a path can never be taken for REF, nor REF for an option.
    let mut paths = git(&top, &["diff", "--name-only", "-z", "--no-renames", reference, "--"]).map_err(fail)?;
    paths.push_str(&git(&top, &["ls-files", "--others", "--exclude-standard", "-z"]).map_err(fail)?);
    let changed: Vec<PathBuf> = paths.split('\0').filter(|p| !p.is_empty()).map(|p| normal(&top.join(p))).collect();
    tracing::info!(reference, files = changed.len(), "files changed since the revision");

    let mut images = BTreeSet::new();
    for (id, image) in analysis.tree.images() {
        let dir = image.dir.canonicalize().unwrap_or_else(|_| normal(&image.dir));
        let mut inputs: Vec<PathBuf> = vec![dir.clone()];
        if let Some(rendered) = &analysis.rendered[id] {
            inputs.extend(rendered.sources.iter().cloned());
        }
        // A context that cannot be walked fails its build anyway; what it could list still counts.
        inputs.extend(engine::context_link_targets(root, &dir).unwrap_or_default());
        if changed.iter().any(|path| inputs.iter().any(|input| path.starts_with(input))) {
            tracing::info!(image = image.name, "changed since the revision");
            images.insert(id);
        }
    }
    Ok(analysis.graph.with_descendants(&images))
}

/// Runs `git ARGS` in `dir`; its stdout.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output =
        Command::new("git").arg("-C").arg(dir).args(args).output().map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
    }
    String::from_utf8(output.stdout).map_err(|_| format!("git {} printed a path that is not UTF-8", args.join(" ")))
}

/// `path` with `.` and `..` resolved lexically (for files that no longer exist).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
