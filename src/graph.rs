//! The dependency graph: edges from `control` files and from the references in rendered Dockerfiles, cycles
//! reported as paths, a deterministic topological order, and `--select`.
//!
//! A cycle does not stop the graph: its images cannot be built (and neither can what depends on them), but
//! every other image is ordered as usual.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt::Write as _;

use globset::{Glob, GlobMatcher};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::definition::control::DependencyField;
use crate::definition::dockerfile::ReferenceKind;
use crate::diagnostic::Diagnostic;
use crate::reference::Parts;
use crate::tree::{ImageId, PerImage, Rendered, Tree};

/// Why one image depends on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Declared in the child's `control` file.
    Control { field: DependencyField, line: usize },
    /// Referenced by the child's rendered Dockerfile.
    Dockerfile { kind: ReferenceKind, line: usize, reference: String },
}

/// The dependencies of every image, before any cycle check.
#[derive(Debug)]
pub struct Dependencies {
    /// Per image: parent → why.
    pub parents: PerImage<BTreeMap<ImageId, Vec<Origin>>>,
    /// Per image: references to images outside the tree (sorted, unique).
    pub external: PerImage<BTreeSet<String>>,
}

/// Works out every image's dependencies. Unknown dependencies are errors; disagreements between `control` and
/// the Dockerfile are warnings naming both sources.
pub fn resolve(tree: &Tree, rendered: &PerImage<Option<Rendered>>) -> (Dependencies, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let by_repository: HashMap<&str, ImageId> =
        tree.images().map(|(id, image)| (image.repository.as_str(), id)).collect();
    let mut parents = Vec::with_capacity(tree.len());
    let mut external = Vec::with_capacity(tree.len());
    for (child, image) in tree.images() {
        let mut from_dockerfile: BTreeMap<ImageId, Vec<Origin>> = BTreeMap::new();
        let mut external_references = BTreeSet::new();
        // The last path component of each external reference, for control dependencies met outside the tree.
        let mut external_names = BTreeSet::new();
        for r in rendered[child].as_ref().map_or(&[][..], |r| &r.references[..]) {
            let parts = Parts::of(&r.reference);
            match by_repository.get(parts.repository) {
                Some(&parent) if parent == child => {}
                Some(&parent) => {
                    let wanted = &tree[parent];
                    if let Some(tag) = parts.tag.filter(|tag| *tag != wanted.tag) {
                        diagnostics.push(
                            Diagnostic::warning(
                                image.template_path(),
                                format!(
                                    "rendered line {} refers to {}:{tag}, but the tree builds {}",
                                    r.line, wanted.repository, wanted.label
                                ),
                            )
                            .for_image(&image.name),
                        );
                    }
                    from_dockerfile.entry(parent).or_default().push(Origin::Dockerfile {
                        kind: r.kind,
                        line: r.line,
                        reference: r.reference.clone(),
                    });
                }
                None => {
                    external_names.insert(parts.repository.rsplit('/').next().unwrap_or(parts.repository).to_owned());
                    external_references.insert(r.reference.clone());
                }
            }
        }

        let mut from_control: BTreeMap<ImageId, Vec<Origin>> = BTreeMap::new();
        for dep in &image.control {
            let origin = Origin::Control { field: dep.field, line: dep.line };
            // `a | b`: the first alternative that is an image of the tree.
            if let Some(parent) = dep.alternatives.iter().find_map(|name| tree.get(name)) {
                from_control.entry(parent).or_default().push(origin);
            } else if !dep.alternatives.iter().any(|name| external_names.contains(name)) {
                let message = format!(
                    "unknown dependency `{}`: no image of the tree has that name, \
                     and the Dockerfile refers to no image of that name",
                    dep.alternatives.join(" | ")
                );
                diagnostics.push(
                    Diagnostic::error(image.control_path(), message).at_line(Some(dep.line)).for_image(&image.name),
                );
            }
        }

        if rendered[child].is_some() {
            disagreements(tree, child, &from_control, &from_dockerfile, &mut diagnostics);
        }
        let mut own: BTreeMap<ImageId, Vec<Origin>> = BTreeMap::new();
        for (parent, origins) in from_control.into_iter().chain(from_dockerfile) {
            own.entry(parent).or_default().extend(origins);
        }
        parents.push(own);
        external.push(external_references);
    }
    let deps = Dependencies { parents: parents.into_iter().collect(), external: external.into_iter().collect() };
    (deps, diagnostics)
}

/// Warns where `control` and the Dockerfile disagree about an image's parents.
fn disagreements(
    tree: &Tree,
    child: ImageId,
    control: &BTreeMap<ImageId, Vec<Origin>>,
    dockerfile: &BTreeMap<ImageId, Vec<Origin>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let image = &tree[child];
    for (parent, origins) in dockerfile {
        if !control.contains_key(parent)
            && let Some(Origin::Dockerfile { line, reference, .. }) = origins.first()
        {
            let message = format!(
                "rendered line {line} refers to {reference}, but {} does not declare `{}`; \
                 imgraph orders the build by the Dockerfile (docker-pkg would not)",
                image.control_path().display(),
                tree[*parent].name
            );
            diagnostics.push(Diagnostic::warning(image.template_path(), message).for_image(&image.name));
        }
    }
    for (parent, origins) in control {
        if *parent != child
            && !dockerfile.contains_key(parent)
            && let Some(Origin::Control { line, .. }) = origins.first()
        {
            diagnostics.push(
                Diagnostic::warning(
                    image.control_path(),
                    format!(
                        "declares `{}`, but {} never refers to it",
                        tree[*parent].name,
                        image.template_path().display()
                    ),
                )
                .at_line(Some(*line))
                .for_image(&image.name),
            );
        }
    }
}

/// A dependency cycle, as a path of images that starts and ends with the same image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<ImageId>);

impl Cycle {
    /// The cycle as an error naming the images and the files that create each edge.
    pub fn diagnostic(&self, tree: &Tree, deps: &Dependencies) -> Diagnostic {
        let names: Vec<&str> = self.0.iter().map(|&i| tree[i].name.as_str()).collect();
        let mut message = format!("dependency cycle: {}", names.join(" -> "));
        for pair in self.0.windows(2) {
            let [parent, child] = [pair[1], pair[0]];
            let image = &tree[child];
            for origin in deps.parents[child].get(&parent).into_iter().flatten() {
                let _ = match origin {
                    Origin::Control { field, line } => write!(
                        message,
                        "\n  {} depends on {}: {}:{line} ({})",
                        image.name,
                        tree[parent].name,
                        image.control_path().display(),
                        field.as_str()
                    ),
                    Origin::Dockerfile { line, reference, .. } => write!(
                        message,
                        "\n  {} depends on {}: {} (rendered line {line}: {reference})",
                        image.name,
                        tree[parent].name,
                        image.template_path().display()
                    ),
                };
            }
        }
        let first = self.0.first().map(|&i| &tree[i]);
        let path = first.map_or_else(|| tree.root.clone(), |image| image.dir.clone());
        let diagnostic = Diagnostic::error(path, message);
        match first {
            Some(image) => diagnostic.for_image(&image.name),
            None => diagnostic,
        }
    }
}

/// The graph of a tree: node `i` is image `i`, edges run parent → child.
#[derive(Debug)]
pub struct Graph {
    dag: DiGraph<(), ()>,
    /// Every image, parents first (ties broken by name); the images that a cycle leaves unordered come last,
    /// by name.
    pub order: Vec<ImageId>,
    /// The cycles, one per group of images that depend on each other, each as a path.
    pub cycles: Vec<Cycle>,
    /// The images on a cycle.
    on_cycle: BTreeSet<ImageId>,
}

impl Graph {
    /// Builds the graph of `count` images with the dependencies `deps`, finding its cycles.
    pub fn build(count: usize, deps: &Dependencies) -> Self {
        let mut dag = DiGraph::with_capacity(count, count);
        for _ in 0..count {
            dag.add_node(());
        }
        for (child, parents) in deps.parents.iter() {
            for &parent in parents.keys() {
                dag.add_edge(node(parent), node(child), ());
            }
        }
        let (order, stuck) = topological_order(&dag);
        let mut cycles = Vec::new();
        let mut on_cycle = BTreeSet::new();
        if !stuck.is_empty() {
            // Strongly connected components of more than one image, or with a self-loop, are cycles.
            let mut components: Vec<Vec<ImageId>> = petgraph::algo::tarjan_scc(&dag)
                .into_iter()
                .map(|c| {
                    let mut c: Vec<ImageId> = c.into_iter().map(id).collect();
                    c.sort_unstable();
                    c
                })
                .filter(|c| c.len() > 1 || dag.contains_edge(node(c[0]), node(c[0])))
                .collect();
            components.sort();
            for component in components {
                cycles.push(find_cycle(&dag, &component));
                on_cycle.extend(component);
            }
        }
        let mut order = order;
        order.extend(stuck);
        Self { dag, order, cycles, on_cycle }
    }

    /// Whether `image` lies on a cycle.
    pub fn is_on_cycle(&self, image: ImageId) -> bool {
        self.on_cycle.contains(&image)
    }

    /// The direct parents of `image`, sorted.
    pub fn parents(&self, image: ImageId) -> Vec<ImageId> {
        self.neighbors(image, Direction::Incoming)
    }

    fn neighbors(&self, image: ImageId, direction: Direction) -> Vec<ImageId> {
        let set: BTreeSet<ImageId> = self.dag.neighbors_directed(node(image), direction).map(id).collect();
        set.into_iter().collect()
    }

    /// `roots` and everything they depend on, transitively.
    pub fn with_ancestors(&self, roots: &BTreeSet<ImageId>) -> BTreeSet<ImageId> {
        let reversed = Reversed(&self.dag);
        let mut out = BTreeSet::new();
        for &root in roots {
            let mut dfs = Dfs::new(reversed, node(root));
            while let Some(n) = dfs.next(reversed) {
                out.insert(id(n));
            }
        }
        out
    }

    /// `roots` and everything that depends on them, transitively.
    pub fn with_descendants(&self, roots: &BTreeSet<ImageId>) -> BTreeSet<ImageId> {
        let mut out = BTreeSet::new();
        for &root in roots {
            let mut dfs = Dfs::new(&self.dag, node(root));
            while let Some(n) = dfs.next(&self.dag) {
                out.insert(id(n));
            }
        }
        out
    }

    /// The images of `selected`, in build order.
    pub fn in_order(&self, selected: &BTreeSet<ImageId>) -> Vec<ImageId> {
        self.order.iter().copied().filter(|i| selected.contains(i)).collect()
    }
}

fn node(image: ImageId) -> NodeIndex {
    NodeIndex::new(image.index())
}

fn id(node: NodeIndex) -> ImageId {
    ImageId::new(node.index())
}

/// Kahn's algorithm with a min-heap on the id (images are sorted by name, so ties break by name). Returns the
/// order of what could be ordered, and the images a cycle leaves stuck (on a cycle or after one), by id.
fn topological_order(dag: &DiGraph<(), ()>) -> (Vec<ImageId>, Vec<ImageId>) {
    let mut remaining: Vec<usize> =
        dag.node_indices().map(|n| dag.neighbors_directed(n, Direction::Incoming).count()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        remaining.iter().enumerate().filter(|(_, r)| **r == 0).map(|(i, _)| Reverse(i)).collect();
    let mut order = Vec::with_capacity(remaining.len());
    while let Some(Reverse(n)) = ready.pop() {
        order.push(ImageId::new(n));
        for child in dag.neighbors_directed(NodeIndex::new(n), Direction::Outgoing) {
            let r = &mut remaining[child.index()];
            *r -= 1;
            if *r == 0 {
                ready.push(Reverse(child.index()));
            }
        }
    }
    let done: BTreeSet<ImageId> = order.iter().copied().collect();
    let stuck = (0..remaining.len()).map(ImageId::new).filter(|n| !done.contains(n)).collect();
    (order, stuck)
}

/// The shortest cycle through the first (by name) image of `component`, a strongly connected component.
fn find_cycle(dag: &DiGraph<(), ()>, component: &[ImageId]) -> Cycle {
    let members: BTreeSet<ImageId> = component.iter().copied().collect();
    let Some(&start) = component.first() else { return Cycle(Vec::new()) };
    // Breadth-first over children within the component, looking for a way back to `start`.
    let mut previous: HashMap<ImageId, ImageId> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut children: Vec<ImageId> =
            dag.neighbors_directed(node(n), Direction::Outgoing).map(id).filter(|c| members.contains(c)).collect();
        children.sort_unstable();
        children.dedup();
        for child in children {
            if child == start {
                // Walk back from `n` to `start`: the path parent → child, reversed into dependency order.
                let mut path = vec![n];
                while let Some(&p) = path.last().and_then(|last| previous.get(last)) {
                    path.push(p);
                }
                // Edges run start → … → n → start (parent → child), so in "depends on" terms the cycle reads
                // start -> n -> … -> start.
                let mut cycle = vec![start];
                cycle.extend(path.into_iter().filter(|&p| p != start));
                cycle.push(start);
                return Cycle(cycle);
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = previous.entry(child) {
                entry.insert(n);
                queue.push_back(child);
            }
        }
    }
    // A strongly connected component always has such a path; never panic all the same.
    Cycle(component.to_vec())
}

/// Glob patterns of `--select`: each matches an image's name, `name:tag`, or full label.
#[derive(Debug, Clone)]
pub struct Selection {
    matchers: Vec<GlobMatcher>,
    with_dependents: bool,
    /// `--only`: what the patterns match and nothing else, not even what it depends on.
    exact: bool,
    /// `--since REF`: the git revision, until [`Selection::within`] gives the images changed since.
    since: Option<String>,
    /// Only these images can match (those changed since the revision, and their dependents).
    within: Option<BTreeSet<ImageId>>,
}

impl Selection {
    pub fn new(patterns: &[String], with_dependents: bool) -> Result<Self, globset::Error> {
        let matchers = patterns.iter().map(|p| Glob::new(p).map(|g| g.compile_matcher())).collect::<Result<_, _>>()?;
        Ok(Self { matchers, with_dependents, exact: false, since: None, within: None })
    }

    /// Only the images changed since the git revision `reference` (and their dependents) can match.
    #[must_use]
    pub fn since(self, reference: Option<String>) -> Self {
        Self { since: reference, ..self }
    }

    /// The git revision of `--since`, if any.
    pub fn since_reference(&self) -> Option<&str> {
        self.since.as_deref()
    }

    /// The same selection, restricted to `images` (what `--since` found).
    #[must_use]
    pub fn within(&self, images: BTreeSet<ImageId>) -> Self {
        Self { within: Some(images), ..self.clone() }
    }

    /// The images matching `patterns`, without what they depend on (`--only`).
    pub fn exact(patterns: &[String]) -> Result<Self, globset::Error> {
        Ok(Self { exact: true, ..Self::new(patterns, false)? })
    }

    /// True when no pattern was given: everything is selected.
    pub fn is_all(&self) -> bool {
        self.matchers.is_empty() && self.since.is_none() && self.within.is_none()
    }

    /// The images selected in `tree`: those matching, their dependents if asked, and everything they need.
    pub fn apply(&self, tree: &Tree, graph: &Graph) -> BTreeSet<ImageId> {
        if self.is_all() {
            return tree.ids().collect();
        }
        let matching = self.matching(tree, graph);
        if self.exact { matching } else { graph.with_ancestors(&matching) }
    }

    /// The images matching, and their dependents if asked, but not what they need (everything when no pattern
    /// was given): what `prune` works on, as docker-pkg prunes the matching images only.
    pub fn matching(&self, tree: &Tree, graph: &Graph) -> BTreeSet<ImageId> {
        if self.is_all() {
            return tree.ids().collect();
        }
        let matched: BTreeSet<ImageId> = tree
            .images()
            .filter(|(id, _)| self.within.as_ref().is_none_or(|within| within.contains(id)))
            .filter(|(_, image)| {
                self.matchers.is_empty() || {
                    let short = format!("{}:{}", image.name, image.tag);
                    self.matchers
                        .iter()
                        .any(|m| m.is_match(&image.name) || m.is_match(&short) || m.is_match(&image.label))
                }
            })
            .map(|(i, _)| i)
            .collect();
        if self.with_dependents { graph.with_descendants(&matched) } else { matched }
    }
}

impl DependencyField {
    /// The field name as written in a control file.
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyField::BuildDepends => "Build-Depends",
            DependencyField::Depends => "Depends",
        }
    }
}
