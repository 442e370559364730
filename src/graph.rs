//! The dependency graph: edges from `control` files and from the references in rendered Dockerfiles, cycles
//! reported as paths, a deterministic topological order, and `--select`.

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
use crate::reference;
use crate::tree::{Rendered, Tree};

/// Why one image depends on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Declared in the child's `control` file.
    Control { field: DependencyField, line: usize },
    /// Referenced by the child's rendered Dockerfile.
    Dockerfile { kind: ReferenceKind, line: usize, reference: String },
}

/// The dependencies of every image, before any cycle check.
#[derive(Debug, Default)]
pub struct Dependencies {
    /// Per image (indexed as `Tree::images`): parent index → why.
    pub parents: Vec<BTreeMap<usize, Vec<Origin>>>,
    /// Per image: references to images outside the tree (sorted, unique).
    pub external: Vec<BTreeSet<String>>,
}

/// Works out every image's dependencies. Unknown dependencies are errors; disagreements between `control` and
/// the Dockerfile are warnings naming both sources.
pub fn resolve(tree: &Tree, rendered: &[Option<Rendered>]) -> (Dependencies, Vec<Diagnostic>) {
    let mut deps = Dependencies {
        parents: vec![BTreeMap::new(); tree.images.len()],
        external: vec![BTreeSet::new(); tree.images.len()],
    };
    let mut diagnostics = Vec::new();
    let by_repository: HashMap<&str, usize> =
        tree.images.iter().enumerate().map(|(i, image)| (image.repository.as_str(), i)).collect();

    for (child, image) in tree.images.iter().enumerate() {
        let mut from_dockerfile: BTreeMap<usize, Vec<Origin>> = BTreeMap::new();
        // The last path component of each external reference, for control dependencies met outside the tree.
        let mut external_names = BTreeSet::new();
        for r in rendered.get(child).and_then(Option::as_ref).map_or(&[][..], |r| &r.references[..]) {
            let parts = reference::split(&r.reference);
            match by_repository.get(parts.repository) {
                Some(&parent) if parent == child => {}
                Some(&parent) => {
                    let wanted = &tree.images[parent];
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
                    deps.external[child].insert(r.reference.clone());
                }
            }
        }

        let mut from_control: BTreeMap<usize, Vec<Origin>> = BTreeMap::new();
        for dep in &image.control {
            let origin = Origin::Control { field: dep.field, line: dep.line };
            // `a | b`: the first alternative that is an image of the tree.
            if let Some(parent) = dep.alternatives.iter().find_map(|name| tree.index_of(name)) {
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

        if rendered.get(child).is_some_and(Option::is_some) {
            disagreements(tree, child, &from_control, &from_dockerfile, &mut diagnostics);
        }
        let parents = &mut deps.parents[child];
        for (parent, origins) in from_control.into_iter().chain(from_dockerfile) {
            parents.entry(parent).or_default().extend(origins);
        }
    }
    (deps, diagnostics)
}

/// Warns where `control` and the Dockerfile disagree about an image's parents.
fn disagreements(
    tree: &Tree,
    child: usize,
    control: &BTreeMap<usize, Vec<Origin>>,
    dockerfile: &BTreeMap<usize, Vec<Origin>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let image = &tree.images[child];
    for (parent, origins) in dockerfile {
        if !control.contains_key(parent)
            && let Some(Origin::Dockerfile { line, reference, .. }) = origins.first()
        {
            let message = format!(
                "rendered line {line} refers to {reference}, but {} does not declare `{}`; \
                 imgraph orders the build by the Dockerfile (docker-pkg would not)",
                image.control_path().display(),
                tree.images[*parent].name
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
                        tree.images[*parent].name,
                        image.template_path().display()
                    ),
                )
                .at_line(Some(*line))
                .for_image(&image.name),
            );
        }
    }
}

/// A dependency cycle, as a path of image indices that starts and ends with the same image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

impl Cycle {
    /// The cycle as an error naming the images and the files that create each edge.
    pub fn diagnostic(&self, tree: &Tree, deps: &Dependencies) -> Diagnostic {
        let names: Vec<&str> = self.0.iter().map(|&i| tree.images[i].name.as_str()).collect();
        let mut message = format!("dependency cycle: {}", names.join(" -> "));
        for pair in self.0.windows(2) {
            let [parent, child] = [pair[1], pair[0]];
            let image = &tree.images[child];
            for origin in deps.parents[child].get(&parent).into_iter().flatten() {
                let _ = match origin {
                    Origin::Control { field, line } => write!(
                        message,
                        "\n  {} depends on {}: {}:{line} ({})",
                        image.name,
                        tree.images[parent].name,
                        image.control_path().display(),
                        field.as_str()
                    ),
                    Origin::Dockerfile { line, reference, .. } => write!(
                        message,
                        "\n  {} depends on {}: {} (rendered line {line}: {reference})",
                        image.name,
                        tree.images[parent].name,
                        image.template_path().display()
                    ),
                };
            }
        }
        Diagnostic::error(tree.images[self.0[0]].dir.clone(), message).for_image(names[0])
    }
}

/// The DAG of a tree: node `i` is `tree.images[i]`, edges run parent → child.
#[derive(Debug)]
pub struct Graph {
    dag: DiGraph<(), ()>,
    /// A build order: parents first, ties broken by name.
    pub order: Vec<usize>,
}

impl Graph {
    /// Builds the DAG, or returns a cycle. `count` is the number of images.
    pub fn build(count: usize, deps: &Dependencies) -> Result<Self, Cycle> {
        let mut dag = DiGraph::with_capacity(count, count);
        for _ in 0..count {
            dag.add_node(());
        }
        for (child, parents) in deps.parents.iter().enumerate() {
            for &parent in parents.keys() {
                dag.add_edge(NodeIndex::new(parent), NodeIndex::new(child), ());
            }
        }
        let order = topological_order(&dag).map_err(|stuck| find_cycle(&dag, &stuck))?;
        Ok(Self { dag, order })
    }

    /// The direct parents of `image`, sorted.
    pub fn parents(&self, image: usize) -> Vec<usize> {
        self.neighbors(image, Direction::Incoming)
    }

    /// The direct children of `image`, sorted.
    pub fn children(&self, image: usize) -> Vec<usize> {
        self.neighbors(image, Direction::Outgoing)
    }

    fn neighbors(&self, image: usize, direction: Direction) -> Vec<usize> {
        let set: BTreeSet<usize> =
            self.dag.neighbors_directed(NodeIndex::new(image), direction).map(NodeIndex::index).collect();
        set.into_iter().collect()
    }

    /// `roots` and everything they depend on, transitively.
    pub fn with_ancestors(&self, roots: &BTreeSet<usize>) -> BTreeSet<usize> {
        let reversed = Reversed(&self.dag);
        let mut out = BTreeSet::new();
        for &root in roots {
            let mut dfs = Dfs::new(reversed, NodeIndex::new(root));
            while let Some(n) = dfs.next(reversed) {
                out.insert(n.index());
            }
        }
        out
    }

    /// `roots` and everything that depends on them, transitively.
    pub fn with_descendants(&self, roots: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for &root in roots {
            let mut dfs = Dfs::new(&self.dag, NodeIndex::new(root));
            while let Some(n) = dfs.next(&self.dag) {
                out.insert(n.index());
            }
        }
        out
    }
}

/// Kahn's algorithm with a min-heap on the index (images are sorted by name, so ties break by name). On a
/// cycle, returns the images that could not be ordered.
fn topological_order(dag: &DiGraph<(), ()>) -> Result<Vec<usize>, Vec<usize>> {
    let mut remaining: Vec<usize> =
        dag.node_indices().map(|n| dag.neighbors_directed(n, Direction::Incoming).count()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        remaining.iter().enumerate().filter(|(_, r)| **r == 0).map(|(i, _)| Reverse(i)).collect();
    let mut order = Vec::with_capacity(remaining.len());
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n);
        for child in dag.neighbors_directed(NodeIndex::new(n), Direction::Outgoing) {
            let r = &mut remaining[child.index()];
            *r -= 1;
            if *r == 0 {
                ready.push(Reverse(child.index()));
            }
        }
    }
    if order.len() == remaining.len() {
        Ok(order)
    } else {
        let done: BTreeSet<usize> = order.into_iter().collect();
        Err((0..remaining.len()).filter(|n| !done.contains(n)).collect())
    }
}

/// The shortest cycle through the first (by name) stuck image that lies on one. Stuck images either lie on
/// a cycle or descend from one, so following parents from any of them reaches a cycle.
fn find_cycle(dag: &DiGraph<(), ()>, stuck: &[usize]) -> Cycle {
    let stuck_set: BTreeSet<usize> = stuck.iter().copied().collect();
    for &start in stuck {
        // Breadth-first over children within the stuck set, looking for a way back to `start`.
        let mut previous: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut children: Vec<usize> = dag
                .neighbors_directed(NodeIndex::new(n), Direction::Outgoing)
                .map(NodeIndex::index)
                .filter(|c| stuck_set.contains(c))
                .collect();
            children.sort_unstable();
            children.dedup();
            for child in children {
                if child == start {
                    // Walk back from `n` to `start`: the path parent → child, reversed into dependency order.
                    let mut path = vec![n];
                    while let Some(&p) = path.last().and_then(|last| previous.get(last)) {
                        path.push(p);
                    }
                    // Edges run start → … → n → start (parent → child), so in "depends on" terms the cycle
                    // reads start -> n -> … -> start.
                    let mut cycle = vec![start];
                    cycle.extend(path.into_iter().filter(|&p| p != start));
                    cycle.push(start);
                    return Cycle(cycle);
                }
                if child != start && !previous.contains_key(&child) {
                    previous.insert(child, n);
                    queue.push_back(child);
                }
            }
        }
    }
    // Unreachable for a graph that failed to sort, but never panic: report the stuck set as it is.
    Cycle(stuck.to_vec())
}

/// Glob patterns of `--select`: each matches an image's name, `name:tag`, or full label.
#[derive(Debug)]
pub struct Selection {
    matchers: Vec<GlobMatcher>,
    with_dependents: bool,
}

impl Selection {
    pub fn new(patterns: &[String], with_dependents: bool) -> Result<Self, globset::Error> {
        let matchers = patterns.iter().map(|p| Glob::new(p).map(|g| g.compile_matcher())).collect::<Result<_, _>>()?;
        Ok(Self { matchers, with_dependents })
    }

    /// True when no pattern was given: everything is selected.
    pub fn is_all(&self) -> bool {
        self.matchers.is_empty()
    }

    /// The images selected in `tree`: those matching, their dependents if asked, and everything they need.
    pub fn apply(&self, tree: &Tree, graph: &Graph) -> BTreeSet<usize> {
        if self.is_all() {
            return (0..tree.images.len()).collect();
        }
        graph.with_ancestors(&self.matching(tree, graph))
    }

    /// The images matching, and their dependents if asked, but not what they need (everything when no pattern
    /// was given): what `prune` works on, as docker-pkg prunes the matching images only.
    pub fn matching(&self, tree: &Tree, graph: &Graph) -> BTreeSet<usize> {
        if self.is_all() {
            return (0..tree.images.len()).collect();
        }
        let matched: BTreeSet<usize> = tree
            .images
            .iter()
            .enumerate()
            .filter(|(_, image)| {
                let short = format!("{}:{}", image.name, image.tag);
                self.matchers.iter().any(|m| m.is_match(&image.name) || m.is_match(&short) || m.is_match(&image.label))
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
