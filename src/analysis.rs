//! A tree taken as far as its graph: scanned, rendered, its dependencies resolved and its cycles found; and,
//! from every problem met on the way, which images cannot be built (*broken*) and which are *blocked* because
//! they depend on one that cannot. Every command that reads a tree starts here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::discover::DiscoverError;
use crate::graph::{self, Dependencies, Graph};
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
        Ok(Self { tree, rendered, deps, graph, diagnostics, broken, blocked })
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
        let control = self.tree[id].control_path();
        self.rendered[id].is_some() && !self.diagnostics.iter().any(|d| d.is_error() && d.path == control)
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

/// The first line of a diagnostic's message (cycle messages go on with the files involved).
fn first_line(diagnostic: &Diagnostic) -> &str {
    diagnostic.message.lines().next().unwrap_or_default()
}
