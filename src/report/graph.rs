//! The dependency graph as text, JSON, Graphviz DOT or Mermaid.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde::Serialize;

use crate::cli::GraphFormat;
use crate::graph::{Dependencies, Graph};
use crate::tree::Tree;

/// The selected part of a tree's graph, ready to print.
pub struct GraphView<'a> {
    pub tree: &'a Tree,
    pub deps: &'a Dependencies,
    pub graph: &'a Graph,
    pub selected: &'a BTreeSet<usize>,
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
    depends: Vec<&'a str>,
    external: Vec<&'a str>,
}

impl GraphView<'_> {
    pub fn write(&self, format: GraphFormat, out: &mut impl Write) -> io::Result<()> {
        match format {
            GraphFormat::Text => self.text(out),
            GraphFormat::Json => self.json(out),
            GraphFormat::Dot => self.dot(out),
            GraphFormat::Mermaid => self.mermaid(out),
        }
    }

    /// Selected images in build order.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        self.graph.order.iter().copied().filter(|i| self.selected.contains(i))
    }

    fn parent_names(&self, image: usize) -> Vec<&str> {
        self.graph.parents(image).into_iter().map(|p| self.tree.images[p].name.as_str()).collect()
    }

    /// `name:tag <- parents`, one line per image in build order, externals after `from`.
    fn text(&self, out: &mut impl Write) -> io::Result<()> {
        for i in self.order() {
            let image = &self.tree.images[i];
            write!(out, "{}:{}", image.name, image.tag)?;
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

    fn json(&self, out: &mut impl Write) -> io::Result<()> {
        let images = self
            .selected
            .iter()
            .map(|&i| {
                let image = &self.tree.images[i];
                JsonImage {
                    name: &image.name,
                    tag: &image.tag,
                    label: &image.label,
                    path: &image.rel_path,
                    depends: self.parent_names(i),
                    external: self.deps.external[i].iter().map(String::as_str).collect(),
                }
            })
            .collect();
        let order = self.order().map(|i| self.tree.images[i].name.as_str()).collect();
        serde_json::to_writer_pretty(&mut *out, &JsonGraph { images, order }).map_err(io::Error::from)?;
        writeln!(out)
    }

    /// Graphviz, edges from parent to child (build order).
    fn dot(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "digraph imgraph {{")?;
        writeln!(out, "  node [shape=box];")?;
        for i in self.order() {
            let image = &self.tree.images[i];
            writeln!(out, "  {} [label={}];", quoted(&image.name), quoted(&format!("{}:{}", image.name, image.tag)))?;
        }
        for i in self.order() {
            for parent in self.graph.parents(i) {
                writeln!(
                    out,
                    "  {} -> {};",
                    quoted(&self.tree.images[parent].name),
                    quoted(&self.tree.images[i].name)
                )?;
            }
        }
        writeln!(out, "}}")
    }

    /// A Mermaid flowchart; node ids are positions because image names may hold characters Mermaid reserves.
    fn mermaid(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "flowchart TD")?;
        for i in self.order() {
            let image = &self.tree.images[i];
            writeln!(out, "  i{i}[\"{}:{}\"]", image.name.replace('"', "#quot;"), image.tag.replace('"', "#quot;"))?;
        }
        for i in self.order() {
            for parent in self.graph.parents(i) {
                writeln!(out, "  i{parent} --> i{i}")?;
            }
        }
        Ok(())
    }
}

/// A DOT string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
