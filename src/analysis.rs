//! A tree taken as far as its graph: scanned, rendered, its dependencies resolved, its cycles found and its
//! platforms checked against its parents'; and, from every problem met on the way, which images cannot be
//! built (*broken*) and which are *blocked* because they depend on one that cannot. Every command that reads a
//! tree starts here.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::discover::DiscoverError;
use crate::graph::{self, Dependencies, Graph, Origin};
use crate::platform::Platform;
use crate::tree::{ImageId, PerImage, Rendered, Tree};

/// A tree, its graph, and what is wrong with it.
#[derive(Debug)]
pub struct Analysis {
    pub tree: Tree,
    pub rendered: PerImage<Option<Rendered>>,
    pub deps: Dependencies,
    pub graph: Graph,
    /// Every problem found, sorted by file and line.
    pub diagnostics: Vec<Diagnostic>,
    /// Why each broken image cannot be built: its first error.
    pub broken: BTreeMap<ImageId, String>,
    /// The images that depend (transitively) on a broken one, each with the broken image it needs (the first
    /// in build order).
    pub blocked: BTreeMap<ImageId, ImageId>,
    /// The images whose dependencies could not all be worked out: their template does not render, or their
    /// control file cannot be read or names an unknown image.
    unknown_dependencies: BTreeSet<ImageId>,
}

impl Analysis {
    /// Scans and analyses the tree at `root`. Only a root that cannot be walked is an error: every flaw of an
    /// image is a diagnostic about it.
    pub fn of(root: &Path, config: Config, tag_suffix: Option<&str>) -> Result<Self, DiscoverError> {
        let tree = Tree::scan(root, config, tag_suffix)?;
        let (rendered, render_problems) = tree.render_all();
        let (deps, dependency_problems) = graph::resolve(&tree, &rendered);
        let graph = Graph::build(tree.len(), &deps);
        let mut diagnostics: Vec<Diagnostic> = tree
            .diagnostics
            .iter()
            .cloned()
            .chain(render_problems)
            .chain(dependency_problems)
            .chain(graph.cycles.iter().map(|cycle| cycle.diagnostic(&tree, &deps)))
            .collect();
        let failing: HashSet<&Path> = diagnostics.iter().filter(|d| d.is_error()).map(|d| d.path.as_path()).collect();
        let unknown_dependencies: BTreeSet<ImageId> = tree
            .images()
            .filter(|(id, image)| rendered[*id].is_none() || failing.contains(image.control_path().as_path()))
            .map(|(id, _)| id)
            .collect();
        diagnostics.extend(platform_mismatches(&tree, &deps, &unknown_dependencies));
        diagnostics.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));

        let mut broken = BTreeMap::new();
        for diagnostic in diagnostics.iter().filter(|d| d.is_error()) {
            if let Some(id) = diagnostic.image.as_deref().and_then(|name| tree.get(name)) {
                broken.entry(id).or_insert_with(|| format!("{}: {}", diagnostic.location(), first_line(diagnostic)));
            }
        }
        for cycle in &graph.cycles {
            let names: Vec<&str> = cycle.0.iter().map(|&i| tree[i].name.as_str()).collect();
            for &id in &cycle.0 {
                broken.entry(id).or_insert_with(|| format!("dependency cycle: {}", names.join(" -> ")));
            }
        }
        let mut blocked = BTreeMap::new();
        for &id in graph.order.iter().filter(|id| broken.contains_key(id)) {
            for dependent in graph.with_descendants(&BTreeSet::from([id])) {
                if !broken.contains_key(&dependent) {
                    blocked.entry(dependent).or_insert(id);
                }
            }
        }
        for (id, reason) in &broken {
            tracing::info!(image = tree[*id].name, reason, "cannot be built");
        }
        for (id, by) in &blocked {
            tracing::info!(
                image = tree[*id].name,
                needs = tree[*by].name,
                "cannot be built: it needs an image that cannot"
            );
        }
        let (images, cycles) = (tree.len(), graph.cycles.len());
        tracing::info!(images, broken = broken.len(), blocked = blocked.len(), cycles, "analysed");
        Ok(Self { tree, rendered, deps, graph, diagnostics, broken, blocked, unknown_dependencies })
    }

    /// Why `id` cannot be built, or `None`: broken itself, or blocked by a broken image it needs.
    pub fn unbuildable(&self, id: ImageId) -> Option<Unbuildable<'_>> {
        if let Some(reason) = self.broken.get(&id) {
            return Some(Unbuildable::Broken(reason));
        }
        self.blocked.get(&id).map(|&by| Unbuildable::Blocked(by))
    }

    /// Whether all of `id`'s dependencies could be worked out: its template rendered, and its control file
    /// could be read and names only images that exist.
    pub fn dependencies_known(&self, id: ImageId) -> bool {
        !self.unknown_dependencies.contains(&id)
    }

    /// The errors that concern no image: directories whose changelog could not name them.
    pub fn unnamed_errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error() && d.image.as_deref().and_then(|n| self.tree.get(n)).is_none())
    }
}

/// Why an image cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unbuildable<'a> {
    /// Its own definition is flawed: the first error.
    Broken(&'a str),
    /// It needs this image, which is broken.
    Blocked(ImageId),
}

/// An error for each image that needs, of a parent in the tree, a platform the parent does not build. A parent
/// that declares no platform builds one, the daemon's, which is not known here: a child may need one platform
/// of it (the build checks which), not two. Images whose dependencies are not all known are left out: they
/// cannot be built already, and their platforms or parents may be wrong.
fn platform_mismatches(tree: &Tree, deps: &Dependencies, unknown: &BTreeSet<ImageId>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (child, image) in tree.images().filter(|(id, image)| !image.platforms.is_empty() && !unknown.contains(id)) {
        // Platforms the image's own control file does not declare come from the config: say so.
        let from = if image.platforms_line.is_some() { "" } else { " (the config's `platforms`)" };
        for (&parent, origins) in deps.parents[child].iter().filter(|(parent, _)| **parent != child) {
            let needed = &tree[parent];
            let message = if needed.platforms.is_empty() {
                if image.platforms.len() < 2 {
                    continue;
                }
                format!(
                    "{} needs {}{from} of {}, which builds only the daemon's own platform; declare Platforms in \
                     its control file",
                    image.name,
                    list(&image.platforms),
                    needed.name
                )
            } else {
                let missing: Vec<&Platform> =
                    image.platforms.iter().filter(|p| !needed.platforms.contains(p)).collect();
                if missing.is_empty() {
                    continue;
                }
                let (missing, builds) = (list(missing), list(&needed.platforms));
                format!("{} needs {missing}{from} of {}, which builds only {builds}", image.name, needed.name)
            };
            // Where the child's platforms are declared, else where the dependency is.
            let (path, line) = match (image.platforms_line, origins.first()) {
                (Some(line), _) => (image.control_path(), Some(line)),
                (None, Some(Origin::Control { line, .. })) => (image.control_path(), Some(*line)),
                (None, _) => (image.template_path(), None),
            };
            diagnostics.push(Diagnostic::error(path, message).at_line(line).for_image(&image.name));
        }
    }
    diagnostics
}

/// `linux/amd64, linux/arm64`.
fn list<'a>(platforms: impl IntoIterator<Item = &'a Platform>) -> String {
    platforms.into_iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The first line of a diagnostic's message (cycle messages go on with the files involved).
fn first_line(diagnostic: &Diagnostic) -> &str {
    diagnostic.message.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Writes an image `name` into `root/name`: its changelog, a template built `FROM` `parent` (when given),
    /// and a control file (when given).
    fn image(root: &Path, name: &str, parent: Option<&str>, control: Option<&str>) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let changelog = format!(
            "{name} (1.0) wikimedia; urgency=medium\n\n  * Initial.\n\n -- A <a@example.org>  Mon, 23 Nov 2026 10:00:00 +0000\n"
        );
        std::fs::write(dir.join("changelog"), changelog).unwrap();
        let from = parent.map_or("FROM scratch\n".to_owned(), |p| format!("FROM {{{{ \"{p}\" | image_tag }}}}\n"));
        std::fs::write(dir.join("Dockerfile.template"), from).unwrap();
        if let Some(control) = control {
            std::fs::write(dir.join("control"), control).unwrap();
        }
    }

    fn analyse(root: &Path, config: Config) -> Analysis {
        Analysis::of(root, config, None).unwrap()
    }

    fn errors(analysis: &Analysis) -> Vec<String> {
        let root = analysis.tree.root.display().to_string();
        analysis.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string().replace(&root, "")).collect()
    }

    fn id(analysis: &Analysis, name: &str) -> ImageId {
        analysis.tree.get(name).unwrap()
    }

    #[test]
    fn a_child_needing_a_platform_its_parent_does_not_build_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        image(root, "php", None, Some("Package: php\nPlatforms: linux/amd64\n"));
        image(root, "app", Some("php"), Some("Package: app\nDepends: php\nPlatforms: linux/amd64, arm64, armhf\n"));
        image(root, "app-tests", Some("app"), None);
        image(root, "other", Some("php"), Some("Platforms: x86_64\n"));
        let analysis = analyse(root, Config::defaults());
        assert_eq!(
            errors(&analysis),
            ["error: /app/control:3: app needs linux/arm/v7, linux/arm64 of php, which builds only linux/amd64"]
        );
        let (app, tests) = (id(&analysis, "app"), id(&analysis, "app-tests"));
        assert!(matches!(analysis.unbuildable(app), Some(Unbuildable::Broken(why)) if why.contains("needs linux/arm")));
        assert_eq!(analysis.unbuildable(tests), Some(Unbuildable::Blocked(app)));
        assert_eq!(analysis.unbuildable(id(&analysis, "other")), None);
        assert_eq!(analysis.unbuildable(id(&analysis, "php")), None);
        // The error is about platforms, not about what the control file declares: the graph is whole.
        assert!(analysis.tree.ids().all(|id| analysis.dependencies_known(id)));
    }

    #[test]
    fn a_parent_without_platforms_builds_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        image(root, "base", None, None);
        image(root, "one", Some("base"), Some("Platforms: linux/arm64\n"));
        image(root, "two", Some("base"), Some("Package: two\n\nPlatforms: linux/arm64\n linux/amd64\n"));
        let analysis = analyse(root, Config::defaults());
        assert_eq!(
            errors(&analysis),
            ["error: /two/control:3: two needs linux/amd64, linux/arm64 of base, which builds only the daemon's own \
              platform; declare Platforms in its control file"]
        );
        assert_eq!(analysis.unbuildable(id(&analysis, "one")), None);
    }

    #[test]
    fn platforms_from_the_config_are_located_at_the_dependency() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        image(&root, "base", None, Some("Platforms: linux/amd64\n"));
        image(&root, "from-template", Some("base"), None);
        image(&root, "from-control", Some("base"), Some("Package: from-control\nBuild-Depends: base\n"));
        image(&root, "own", Some("base"), Some("Platforms: linux/amd64\n"));
        let config_path = dir.path().join("images.toml");
        std::fs::write(&config_path, "platforms = [\"linux/arm64\", \"linux/amd64\"]\n").unwrap();
        let config = Config::load(Some(&config_path), None, None).unwrap();
        let analysis = analyse(&root, config);
        let needs = "needs linux/arm64 (the config's `platforms`) of base, which builds only linux/amd64";
        assert_eq!(
            errors(&analysis),
            [
                format!("error: /from-control/control:2: from-control {needs}"),
                format!("error: /from-template/Dockerfile.template: from-template {needs}"),
            ]
        );
    }

    #[test]
    fn images_whose_dependencies_are_unknown_are_not_checked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        image(root, "base", None, Some("Platforms: linux/amd64\n"));
        image(root, "bad", Some("base"), Some("Platforms: linux/arm64\nDepends: nowhere\n"));
        image(root, "worse", Some("base"), Some("Platforms: linux/arm64, linux/\n"));
        let analysis = analyse(root, Config::defaults());
        let errors = errors(&analysis);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("error: /bad/control:2: unknown dependency `nowhere`"), "{errors:?}");
        assert!(errors[1].starts_with("error: /worse/control:1: Platforms: `linux/` is not a valid platform"));
        assert!(!analysis.dependencies_known(id(&analysis, "bad")));
    }
}
