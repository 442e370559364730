//! The dependency graph as text, JSON, Graphviz DOT or Mermaid.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde::Serialize;

use crate::graph::{Dependencies, Graph};
use crate::platform::Platform;
use crate::tree::{Image, ImageId, Tree};

/// How the graph is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per image, in build order.
    Text,
    /// `{"images": [...], "order": [...]}`.
    Json,
    /// Graphviz.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// The selected part of a tree's graph, ready to print: only the images in `selected` and the edges between
/// them.
pub struct GraphView<'a> {
    pub tree: &'a Tree,
    pub deps: &'a Dependencies,
    pub graph: &'a Graph,
    pub selected: &'a BTreeSet<ImageId>,
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    images: Vec<JsonImage<'a>>,
    order: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    name: &'a str,
    tag: &'a str,
    label: &'a str,
    path: &'a str,
    /// Empty when the image builds the daemon's own platform.
    platforms: &'a [Platform],
    depends: Vec<&'a str>,
    external: Vec<&'a str>,
}

impl GraphView<'_> {
    pub fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Text => self.text(out),
            Format::Json => self.json(out),
            Format::Dot => self.dot(out),
            Format::Mermaid => self.mermaid(out),
        }
    }

    /// Selected images in build order.
    fn order(&self) -> impl Iterator<Item = ImageId> + '_ {
        self.graph.order.iter().copied().filter(|i| self.selected.contains(i))
    }

    /// The shown parents of `image`.
    fn parents(&self, image: ImageId) -> Vec<ImageId> {
        self.graph.parents(image).into_iter().filter(|p| self.selected.contains(p)).collect()
    }

    fn parent_names(&self, image: ImageId) -> Vec<&str> {
        self.parents(image).into_iter().map(|p| self.tree[p].name.as_str()).collect()
    }

    /// `name:tag [platforms] <- parents`, one line per image in build order, externals after `from`.
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for i in self.order() {
            write!(out, "{}", label(&self.tree[i]))?;
            let parents = self.parent_names(i);
            if !parents.is_empty() {
                write!(out, " <- {}", parents.join(", "))?;
            }
            let external = &self.deps.external[i];
            if !external.is_empty() {
                write!(out, " (external: {})", external.iter().map(String::as_str).collect::<Vec<_>>().join(", "))?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        let images = self
            .selected
            .iter()
            .map(|&i| {
                let image = &self.tree[i];
                JsonImage {
                    name: &image.name,
                    tag: &image.tag,
                    label: &image.label,
                    path: &image.rel_path,
                    platforms: &image.platforms,
                    depends: self.parent_names(i),
                    external: self.deps.external[i].iter().map(String::as_str).collect(),
                }
            })
            .collect();
        let order = self.order().map(|i| self.tree[i].name.as_str()).collect();
        serde_json::to_writer_pretty(&mut *out, &JsonGraph { images, order }).map_err(io::Error::from)?;
        writeln!(out)
    }

    /// Graphviz, edges from parent to child (build order).
    fn dot(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "digraph imgraph {{")?;
        writeln!(out, "  node [shape=box];")?;
        for i in self.order() {
            let image = &self.tree[i];
            writeln!(out, "  {} [label={}];", quoted(&image.name), quoted(&label(image)))?;
        }
        for i in self.order() {
            for parent in self.parents(i) {
                writeln!(out, "  {} -> {};", quoted(&self.tree[parent].name), quoted(&self.tree[i].name))?;
            }
        }
        writeln!(out, "}}")
    }

    /// A Mermaid flowchart; node ids are positions because image names may hold characters Mermaid reserves.
    fn mermaid(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "flowchart TD")?;
        for i in self.order() {
            writeln!(out, "  i{}[\"{}\"]", i.index(), label(&self.tree[i]).replace('"', "#quot;"))?;
        }
        for i in self.order() {
            for parent in self.parents(i) {
                writeln!(out, "  i{} --> i{}", parent.index(), i.index())?;
            }
        }
        Ok(())
    }
}

/// `name:tag`, and the platforms when the image declares any: `base:1 [linux/amd64, linux/arm64]`.
fn label(image: &Image) -> String {
    let label = format!("{}:{}", image.name, image.tag);
    if image.platforms.is_empty() {
        return label;
    }
    let platforms: Vec<String> = image.platforms.iter().map(ToString::to_string).collect();
    format!("{label} [{}]", platforms.join(", "))
}

/// A DOT string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
