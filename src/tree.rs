//! A scanned tree: every image's definition read in parallel (changelog top entry, control file), labels
//! composed as docker-pkg does, names and tags validated, and templates rendered on demand.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::definition::changelog;
use crate::definition::control::{self, Dependency};
use crate::definition::dockerfile::{self, ImageReference};
use crate::definition::template::{TemplateEngine, TemplateError};
use crate::diagnostic::Diagnostic;
use crate::discover::{self, CHANGELOG, CONTROL, DiscoverError, TEMPLATE};
use crate::reference;
use crate::settings::Config;

/// One image of the tree, as its files define it.
#[derive(Debug, Clone)]
pub struct Image {
    /// Short name, from the changelog's top entry.
    pub name: String,
    /// Version of the changelog's top entry.
    pub tag: String,
    /// `registry/namespace/name`.
    pub repository: String,
    /// `registry/namespace/name:tag`, docker-pkg's full label.
    pub label: String,
    /// The image directory.
    pub dir: PathBuf,
    /// `dir` relative to the tree root, `/`-separated.
    pub rel_path: String,
    /// Declared dependencies (empty without a `control` file).
    pub control: Vec<Dependency>,
    /// Why the image cannot be built as named (an illegal Docker name or tag), if so.
    pub invalid: Option<String>,
}

impl Image {
    pub fn template_path(&self) -> PathBuf {
        self.dir.join(TEMPLATE)
    }

    pub fn control_path(&self) -> PathBuf {
        self.dir.join(CONTROL)
    }
}

/// An image's rendered Dockerfile and the references found in it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub dockerfile: String,
    pub references: Vec<ImageReference>,
}

impl Rendered {
    /// docker-pkg's `force_numeric_user` rule: the last line starting with `USER ` names a numeric user (and
    /// group), e.g. `USER 1000` or `USER 123:12`; no such line is fine.
    pub fn has_numeric_user(&self) -> bool {
        let Some(last) = self.dockerfile.lines().rfind(|l| l.starts_with("USER ")) else { return true };
        let user = last["USER".len()..].trim_start();
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match user.split_once(':') {
            Some((uid, gid)) => numeric(uid) && numeric(gid),
            None => numeric(user),
        }
    }
}

/// A scanned tree.
#[derive(Debug)]
pub struct Tree {
    pub root: PathBuf,
    pub config: Config,
    /// Images sorted by name; names are unique.
    pub images: Vec<Image>,
    /// Problems found while scanning, in path order.
    pub diagnostics: Vec<Diagnostic>,
    by_name: HashMap<String, usize>,
    templates: TemplateEngine,
}

impl Tree {
    /// Walks `root` and reads every image definition, in parallel (`scan_workers` threads).
    pub fn scan(root: &Path, config: Config) -> Result<Self, DiscoverError> {
        let discovery = discover::discover(root)?;
        let mut diagnostics = discovery.diagnostics;
        let loaded = parallel_map(&discovery.image_dirs, config.scan_workers, |dir| load_image(root, dir, &config));
        let mut images = Vec::with_capacity(loaded.len());
        for (image, problems) in loaded {
            diagnostics.extend(problems);
            images.extend(image);
        }
        images.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.rel_path.cmp(&b.rel_path)));
        // Duplicate names: the first directory (by path) keeps the name, every other one is an error naming both.
        let mut by_name: HashMap<String, usize> = HashMap::with_capacity(images.len());
        let mut kept = Vec::with_capacity(images.len());
        for image in images {
            if let Some(&first) = by_name.get(&image.name) {
                let first: &Image = &kept[first];
                diagnostics.push(
                    Diagnostic::error(
                        image.dir.join(CHANGELOG),
                        format!(
                            "duplicate image name `{}`: also defined by {}",
                            image.name,
                            first.dir.join(CHANGELOG).display()
                        ),
                    )
                    .for_image(&image.name),
                );
                continue;
            }
            by_name.insert(image.name.clone(), kept.len());
            kept.push(image);
        }
        diagnostics.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
        // Tree labels first, so `image_tag` prefers the tree over a same-named base image.
        let known = kept.iter().map(|i| i.label.clone()).chain(config.base_images.iter().cloned()).collect();
        let templates = TemplateEngine::new(&config, known);
        Ok(Self { root: root.to_owned(), config, images: kept, diagnostics, by_name, templates })
    }

    /// The image called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Image> {
        self.by_name.get(name).map(|&i| &self.images[i])
    }

    /// The index of the image called `name` in [`Tree::images`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The image that a user-given NAME designates: a short name, `name:tag` or a full label.
    pub fn find(&self, wanted: &str) -> Option<&Image> {
        self.get(wanted)
            .or_else(|| self.images.iter().find(|i| i.label == wanted || format!("{}:{}", i.name, i.tag) == wanted))
    }

    /// Renders one image's template.
    pub fn render(&self, image: &Image) -> Result<String, TemplateError> {
        self.templates.render(&image.dir)
    }

    /// Renders every image and extracts its references, in parallel. Failures become diagnostics and leave
    /// `None` in the image's slot.
    pub fn render_all(&self) -> (Vec<Option<Rendered>>, Vec<Diagnostic>) {
        let results = parallel_map(&self.images, self.config.scan_workers, |image| self.render_one(image));
        let mut rendered = Vec::with_capacity(results.len());
        let mut diagnostics = Vec::new();
        for result in results {
            match result {
                Ok(r) => rendered.push(Some(r)),
                Err(d) => {
                    diagnostics.push(d);
                    rendered.push(None);
                }
            }
        }
        (rendered, diagnostics)
    }

    fn render_one(&self, image: &Image) -> Result<Rendered, Diagnostic> {
        let dockerfile = self.render(image).map_err(|e| template_diagnostic(&e).for_image(&image.name))?;
        let references = dockerfile::image_references(&dockerfile).map_err(|e| {
            Diagnostic::error(image.template_path(), format!("rendered Dockerfile, line {}: {}", e.line, e.message))
                .for_image(&image.name)
        })?;
        Ok(Rendered { dockerfile, references })
    }
}

/// A template error as a diagnostic located in the template (or included) file.
pub fn template_diagnostic(e: &TemplateError) -> Diagnostic {
    Diagnostic::error(&e.path, e.message.clone()).at_line(e.line)
}

/// Reads one image directory; `None` when its changelog cannot name it.
fn load_image(root: &Path, dir: &Path, config: &Config) -> (Option<Image>, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    let entry = match changelog::read_top_entry(&dir.join(CHANGELOG)) {
        Ok(entry) => entry,
        Err(e) => {
            problems.push(Diagnostic::error(&e.path, e.message).at_line(e.line));
            return (None, problems);
        }
    };
    let control_path = dir.join(CONTROL);
    let control = if control_path.exists() || control_path.is_symlink() {
        control::read_control(&control_path).unwrap_or_else(|e| {
            problems.push(Diagnostic::error(&e.path, e.message).at_line(e.line).for_image(&entry.package));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let repository = config.repository(&entry.package);
    // docker-pkg's nightly and snapshot tags: the changelog version plus the run's suffix.
    let tag = match &config.tag_suffix {
        Some(suffix) => format!("{}-{suffix}", entry.version),
        None => entry.version.clone(),
    };
    let invalid = reference::check_repository(&repository).err().or_else(|| reference::check_tag(&tag).err());
    if let Some(why) = &invalid {
        problems.push(
            Diagnostic::error(dir.join(CHANGELOG), why.clone())
                .at_line(Some(entry.line))
                .for_image(&entry.package)
                .image_only(),
        );
    }
    let rel_path = dir
        .strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let image = Image {
        label: format!("{repository}:{tag}"),
        name: entry.package,
        tag,
        repository,
        dir: dir.to_owned(),
        rel_path,
        control,
        invalid,
    };
    (Some(image), problems)
}

/// Maps `f` over `items` on up to `workers` threads, keeping the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = workers.min(items.len()).max(1);
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, R>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    local.push((i, f(item)));
                }
                crate::lock(&results).extend(local);
            });
        }
    });
    results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::{Rendered, parallel_map};

    #[test]
    fn numeric_user_rule_matches_docker_pkg() {
        let numeric = |text: &str| Rendered { dockerfile: text.into(), references: Vec::new() }.has_numeric_user();
        assert!(!numeric("USER 0\nUSER notmuchnumeric"));
        assert!(numeric("FROM a"));
        assert!(numeric("USER root\nRUN x\nUSER 123:12"));
        assert!(numeric("USER 1000"));
        assert!(!numeric("USER 1000 "));
        assert!(!numeric("USER ${UID}"));
    }

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<usize> = (0..1000).collect();
        assert_eq!(parallel_map(&items, 4, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(parallel_map(&[] as &[usize], 4, |i| *i), Vec::<usize>::new());
    }
}
