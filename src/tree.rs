//! A scanned tree: every image's definition read in parallel (changelog top entry, control file), labels
//! composed as docker-pkg does, names and tags validated, and templates rendered on demand.
//!
//! A flaw in one image's definition is a diagnostic about that image, never a failure of the scan: the image
//! stays in the tree (so that what depends on it can be named and skipped), unless its changelog cannot even
//! name it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Index;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::Config;
use crate::definition::changelog;
use crate::definition::control::{self, Control, Dependency};
use crate::definition::dockerfile::{self, ImageReference};
use crate::definition::template::{TemplateEngine, TemplateError};
use crate::definition::version::Version;
use crate::diagnostic::Diagnostic;
use crate::discover::{self, CHANGELOG, CONTROL, DiscoverError, TEMPLATE};
use crate::platform::Platform;
use crate::reference::Reference;

/// An image of a tree: its position in [`Tree`], which sorts images by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageId(u32);

impl ImageId {
    /// The position, for per-image tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn new(index: usize) -> Self {
        // A tree has far fewer than 4 billion images: the scan reads every one of them from disk.
        Self(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

/// One value per image of a tree, indexed by [`ImageId`].
#[derive(Debug, Clone)]
pub struct PerImage<T>(Vec<T>);

impl<T> PerImage<T> {
    pub fn iter(&self) -> impl Iterator<Item = (ImageId, &T)> {
        self.0.iter().enumerate().map(|(i, value)| (ImageId::new(i), value))
    }
}

impl<T> Index<ImageId> for PerImage<T> {
    type Output = T;

    fn index(&self, id: ImageId) -> &T {
        &self.0[id.index()]
    }
}

impl<T> FromIterator<T> for PerImage<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// One image of the tree, as its files define it.
#[derive(Debug, Clone)]
pub struct Image {
    /// Short name, from the changelog's top entry.
    pub name: String,
    /// The changelog's top version.
    pub version: Version,
    /// The tag: the version, plus the run's nightly or snapshot suffix.
    pub tag: String,
    /// `registry/namespace/name`.
    pub repository: String,
    /// `registry/namespace/name:tag`, docker-pkg's full label.
    pub label: String,
    /// The label as a legal reference; `None` when Docker would refuse the name or tag (a diagnostic says why).
    pub reference: Option<Reference>,
    /// The image directory.
    pub dir: PathBuf,
    /// `dir` relative to the tree root, `/`-separated.
    pub rel_path: String,
    /// Declared dependencies (empty without a `control` file).
    pub control: Vec<Dependency>,
    /// The platforms to build, sorted, without duplicates: the control file's `Platforms`, else the config's
    /// `platforms`; empty means the builder daemon's own platform.
    pub platforms: Vec<Platform>,
    /// The line of the control file's `Platforms` field, when `platforms` comes from there.
    pub platforms_line: Option<usize>,
}

impl Image {
    pub fn template_path(&self) -> PathBuf {
        self.dir.join(TEMPLATE)
    }

    pub fn control_path(&self) -> PathBuf {
        self.dir.join(CONTROL)
    }

    pub fn changelog_path(&self) -> PathBuf {
        self.dir.join(CHANGELOG)
    }
}

/// An image's rendered Dockerfile and the references found in it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub dockerfile: String,
    pub references: Vec<ImageReference>,
    /// The files the render read: the template and what it included (canonical).
    pub sources: Vec<PathBuf>,
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
    /// The root as given.
    pub root: PathBuf,
    /// The root, canonical: nothing is read from outside it.
    pub canonical_root: PathBuf,
    pub config: Config,
    /// Sorted by name; names are unique.
    images: Vec<Image>,
    /// Problems found while scanning, in path order.
    pub diagnostics: Vec<Diagnostic>,
    /// Image directories left out because an earlier directory (by path) has their name, with that image.
    pub duplicates: Vec<(PathBuf, ImageId)>,
    by_name: HashMap<String, ImageId>,
    templates: TemplateEngine,
}

impl Index<ImageId> for Tree {
    type Output = Image;

    fn index(&self, id: ImageId) -> &Image {
        &self.images[id.index()]
    }
}

impl Tree {
    /// Walks `root` and reads every image definition, in parallel (`scan_workers` threads). `tag_suffix` is
    /// appended to every tag (`--nightly`, `--snapshot`).
    pub fn scan(root: &Path, config: Config, tag_suffix: Option<&str>) -> Result<Self, DiscoverError> {
        let discovery = discover::discover(root)?;
        let canonical_root =
            root.canonicalize().map_err(|source| DiscoverError::Unreadable { path: root.to_owned(), source })?;
        let mut diagnostics = discovery.diagnostics;
        let loaded =
            parallel_map(&discovery.image_dirs, config.scan_workers, |dir| load_image(root, dir, &config, tag_suffix));
        let mut images = Vec::with_capacity(loaded.len());
        for (dir, result) in discovery.image_dirs.iter().zip(loaded) {
            match result {
                Ok((image, problems)) => {
                    diagnostics.extend(problems);
                    images.extend(image);
                }
                Err(panic) => diagnostics.push(Diagnostic::error(dir, internal_error(&panic))),
            }
        }
        images.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.rel_path.cmp(&b.rel_path)));
        // Duplicate names: the first directory (by path) keeps the name; the error names both, and concerns
        // the image of that name, so it is not built and neither is anything depending on it.
        let mut by_name: HashMap<String, ImageId> = HashMap::with_capacity(images.len());
        let mut kept: Vec<Image> = Vec::with_capacity(images.len());
        let mut duplicates = Vec::new();
        for image in images {
            if let Some(&first_id) = by_name.get(&image.name) {
                duplicates.push((image.dir.clone(), first_id));
                let first = &kept[first_id.index()];
                diagnostics.push(
                    Diagnostic::error(
                        image.changelog_path(),
                        format!(
                            "duplicate image name `{}`: also defined by {}",
                            image.name,
                            first.changelog_path().display()
                        ),
                    )
                    .for_image(&image.name),
                );
                continue;
            }
            by_name.insert(image.name.clone(), ImageId::new(kept.len()));
            kept.push(image);
        }
        diagnostics.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
        // Tree labels first, so `image_tag` prefers the tree over a same-named base image.
        let known = kept.iter().map(|i| i.label.clone()).chain(config.base_images.iter().cloned()).collect();
        let templates = TemplateEngine::new(&config, known, &canonical_root);
        Ok(Self {
            root: root.to_owned(),
            canonical_root,
            config,
            images: kept,
            diagnostics,
            duplicates,
            by_name,
            templates,
        })
    }

    /// How many images the tree has.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Every image, in name order.
    pub fn images(&self) -> impl Iterator<Item = (ImageId, &Image)> {
        self.images.iter().enumerate().map(|(i, image)| (ImageId::new(i), image))
    }

    /// Every image id, in name order.
    pub fn ids(&self) -> impl Iterator<Item = ImageId> + use<> {
        (0..self.images.len()).map(ImageId::new)
    }

    /// The image called `name`, if any.
    pub fn get(&self, name: &str) -> Option<ImageId> {
        self.by_name.get(name).copied()
    }

    /// The image that a user-given NAME designates: a short name, `name:tag` or a full label.
    pub fn find(&self, wanted: &str) -> Option<ImageId> {
        self.get(wanted).or_else(|| {
            self.images()
                .find(|(_, i)| i.label == wanted || format!("{}:{}", i.name, i.tag) == wanted)
                .map(|(id, _)| id)
        })
    }

    /// Renders one image's template.
    pub fn render(&self, id: ImageId) -> Result<String, TemplateError> {
        self.templates.render(&self[id].dir)
    }

    /// Renders every image and extracts its references, in parallel. Failures become diagnostics about their
    /// image and leave `None` in its slot.
    pub fn render_all(&self) -> (PerImage<Option<Rendered>>, Vec<Diagnostic>) {
        let ids: Vec<ImageId> = self.ids().collect();
        let results = parallel_map(&ids, self.config.scan_workers, |&id| self.render_one(id));
        let mut diagnostics = Vec::new();
        let rendered = ids
            .iter()
            .zip(results)
            .map(|(&id, result)| {
                let image = &self[id];
                match result {
                    Ok(Ok(rendered)) => Some(rendered),
                    Ok(Err(problem)) => {
                        diagnostics.push(problem);
                        None
                    }
                    Err(panic) => {
                        diagnostics.push(
                            Diagnostic::error(image.template_path(), internal_error(&panic)).for_image(&image.name),
                        );
                        None
                    }
                }
            })
            .collect();
        (rendered, diagnostics)
    }

    fn render_one(&self, id: ImageId) -> Result<Rendered, Diagnostic> {
        let image = &self[id];
        let started = std::time::Instant::now();
        let (dockerfile, sources) = self.templates.render_with_sources(&image.dir);
        let dockerfile = dockerfile.map_err(|e| template_diagnostic(&e).for_image(&image.name))?;
        let elapsed_us = started.elapsed().as_micros();
        tracing::debug!(image = image.name, bytes = dockerfile.len(), elapsed_us, "rendered");
        let references = dockerfile::image_references(&dockerfile).map_err(|e| {
            Diagnostic::error(image.template_path(), format!("rendered Dockerfile, line {}: {}", e.line, e.message))
                .for_image(&image.name)
        })?;
        Ok(Rendered { dockerfile, references, sources })
    }
}

/// The names of the images under `root`, sorted, from their changelogs alone: for shell completion, which must
/// be quick and never fail.
pub fn image_names(root: &Path) -> Vec<String> {
    let Ok(discovery) = discover::discover(root) else { return Vec::new() };
    let mut names: Vec<String> = discovery
        .image_dirs
        .iter()
        .filter_map(|dir| changelog::read_top_entry(&dir.join(CHANGELOG)).ok())
        .map(|entry| entry.package)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A template error as a diagnostic located in the template (or included) file.
pub fn template_diagnostic(e: &TemplateError) -> Diagnostic {
    Diagnostic::error(&e.path, e.message.clone()).at_line(e.line)
}

/// A bug met while reading one image: reported about that image, so the rest of the run goes on.
fn internal_error(panic: &str) -> String {
    format!("internal error while reading this image ({panic}); please report it")
}

/// Reads one image directory; `None` when its changelog cannot name it.
fn load_image(root: &Path, dir: &Path, config: &Config, tag_suffix: Option<&str>) -> (Option<Image>, Vec<Diagnostic>) {
    let changelog_path = dir.join(CHANGELOG);
    let entry = match changelog::read_top_entry(&changelog_path) {
        Ok(entry) => entry,
        Err(e) => {
            let why = "the directory is left out";
            return (None, vec![Diagnostic::error(&e.path, format!("{} ({why})", e.message)).at_line(e.line)]);
        }
    };
    let name = entry.package;
    let mut problems: Vec<Diagnostic> = entry
        .warnings
        .into_iter()
        .map(|(line, message)| Diagnostic::warning(&changelog_path, message).at_line(Some(line)).for_image(&name))
        .collect();
    let control_path = dir.join(CONTROL);
    let control = if control_path.exists() || control_path.is_symlink() {
        control::read_control(&control_path).unwrap_or_else(|e| {
            problems.push(Diagnostic::error(&e.path, e.message).at_line(e.line).for_image(&name));
            Control::default()
        })
    } else {
        Control::default()
    };
    let Control { dependencies, platforms, platforms_line, warnings } = control;
    problems.extend(
        warnings
            .into_iter()
            .map(|(line, message)| Diagnostic::warning(&control_path, message).at_line(Some(line)).for_image(&name)),
    );
    let mut platforms = platforms.unwrap_or_else(|| config.platforms.clone());
    platforms.sort();
    platforms.dedup();
    let repository = config.repository(&name);
    // docker-pkg's nightly and snapshot tags: the changelog version plus the run's suffix.
    let tag = match tag_suffix {
        Some(suffix) => format!("{}-{suffix}", entry.version),
        None => entry.version.to_string(),
    };
    let label = format!("{repository}:{tag}");
    let reference = match Reference::parse(&label) {
        Ok(reference) => Some(reference),
        Err(why) => {
            problems.push(Diagnostic::error(&changelog_path, why).at_line(Some(entry.line)).for_image(&name));
            None
        }
    };
    let rel_path = dir
        .strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    tracing::debug!(image = name, tag, dir = %dir.display(), problems = problems.len(), "read");
    let image = Image {
        name,
        version: entry.version,
        tag,
        repository,
        label,
        reference,
        dir: dir.to_owned(),
        rel_path,
        control: dependencies,
        platforms,
        platforms_line,
    };
    (Some(image), problems)
}

/// Maps `f` over `items` on up to `workers` threads, keeping the order of `items`. A panic in `f` becomes that
/// item's `Err` (its message), so that one bad input cannot stop the others.
fn parallel_map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<Result<R, String>> {
    let guarded = |item: &T| catch_unwind(AssertUnwindSafe(|| f(item))).map_err(|panic| panic_message(&*panic));
    let workers = workers.min(items.len()).max(1);
    if workers == 1 {
        return items.iter().map(guarded).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, Result<R, String>>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    local.push((i, guarded(item)));
                }
                crate::lock(&results).extend(local);
            });
        }
    });
    results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).into_values().collect()
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::{Config, Platform, Rendered, Tree, parallel_map};

    #[test]
    fn platforms_come_from_control_else_config_sorted_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        for (name, control) in [("a", Some("Platforms: linux/arm64 linux/amd64 arm64\n")), ("b", None)] {
            let image = dir.path().join(name);
            std::fs::create_dir_all(&image).unwrap();
            let changelog = format!(
                "{name} (1) x; urgency=low\n\n  * x\n\n -- A <a@example.org>  Mon, 23 Nov 2026 10:00:00 +0000\n"
            );
            std::fs::write(image.join("changelog"), changelog).unwrap();
            std::fs::write(image.join("Dockerfile.template"), "FROM scratch\n").unwrap();
            if let Some(control) = control {
                std::fs::write(image.join("control"), control).unwrap();
            }
        }
        let names = |platforms: &[Platform]| platforms.iter().map(ToString::to_string).collect::<Vec<_>>();
        let mut config = Config::defaults();
        let tree = Tree::scan(dir.path(), config.clone(), None).unwrap();
        let (a, b) = (&tree[tree.get("a").unwrap()], &tree[tree.get("b").unwrap()]);
        assert_eq!(
            (names(&a.platforms), a.platforms_line),
            (vec!["linux/amd64".into(), "linux/arm64".into()], Some(1))
        );
        assert_eq!((names(&b.platforms), b.platforms_line), (vec![], None));
        config.platforms = vec![Platform::parse("s390x").unwrap()];
        let tree = Tree::scan(dir.path(), config, None).unwrap();
        let (a, b) = (&tree[tree.get("a").unwrap()], &tree[tree.get("b").unwrap()]);
        assert_eq!(names(&a.platforms), ["linux/amd64", "linux/arm64"]);
        assert_eq!((names(&b.platforms), b.platforms_line), (vec!["linux/s390x".into()], None));
        // The duplicate is a warning about the control file.
        assert!(tree.diagnostics.iter().any(|d| d.message.contains("`arm64` is linux/arm64, as `linux/arm64` is")));
    }

    #[test]
    fn numeric_user_rule_matches_docker_pkg() {
        let numeric = |text: &str| {
            Rendered { dockerfile: text.into(), references: Vec::new(), sources: Vec::new() }.has_numeric_user()
        };
        assert!(!numeric("USER 0\nUSER notmuchnumeric"));
        assert!(numeric("FROM a"));
        assert!(numeric("USER root\nRUN x\nUSER 123:12"));
        assert!(numeric("USER 1000"));
        assert!(!numeric("USER 1000 "));
        assert!(!numeric("USER ${UID}"));
    }

    #[test]
    fn parallel_map_keeps_order_and_contains_panics() {
        let items: Vec<usize> = (0..1000).collect();
        let doubled: Vec<usize> = parallel_map(&items, 4, |i| i * 2).into_iter().map(Result::unwrap).collect();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(parallel_map(&[] as &[usize], 4, |i| *i).is_empty());
        let results = parallel_map(&items, 4, |&i| if i == 7 { panic!("boom {i}") } else { i });
        assert_eq!(results[7], Err("boom 7".to_owned()));
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 999);
    }
}
