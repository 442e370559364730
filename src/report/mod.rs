//! What the user sees, in one place: the [`Printer`] owns stdout (data: tables, listings, JSON) and stderr
//! (messages for humans), and the renderers here turn what the commands return into text: the graph in its
//! four formats ([`graph`]), the progress and results of a run ([`progress`]), `check`'s listing, `status`'s
//! table, `prune`'s and `update`'s reports, and counts and suggestions.

pub mod graph;
pub mod junit;
pub mod progress;

use std::collections::BTreeSet;
use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::plan::{Planned, State};
use crate::prune::{Action, Observer, Removal, Tally};
use crate::tree::Tree;
use crate::update::{Matched, Plan};

pub use graph::GraphView;

/// Where output goes. Data goes to stdout, and with `--json` nothing but JSON does; messages for humans go to
/// stderr, timestamped when it is not a terminal (CI logs).
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
    terminal: bool,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Self { json, terminal: io::stderr().is_terminal() }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// How a live run is shown.
    pub fn style(&self) -> progress::Style {
        match (self.json, self.terminal) {
            (true, _) => progress::Style::Json,
            (false, true) => progress::Style::Terminal,
            (false, false) => progress::Style::Plain,
        }
    }

    /// Writes data to stdout, in one go, flushed.
    pub fn data(&self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let mut out = io::stdout().lock();
        write(&mut out)?;
        out.flush()
    }

    /// One JSON value on a line of stdout.
    pub fn json_line(&self, value: &impl Serialize) -> io::Result<()> {
        self.data(|out| {
            serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
            writeln!(out)
        })
    }

    /// A message for humans on stderr (not with `-q`).
    pub fn note(&self, message: impl Display) {
        if !crate::logging::quiet() {
            eprintln!("{message}");
        }
    }

    /// Diagnostics on stderr, one per line.
    pub fn diagnostics<'a>(&self, diagnostics: impl IntoIterator<Item = &'a Diagnostic>) {
        let mut err = io::stderr().lock();
        for diagnostic in diagnostics {
            // stderr is where messages go; if it is gone there is nowhere to say so.
            let _ = writeln!(err, "{diagnostic}");
        }
    }
}

/// Diagnostics, one per line (multi-line messages kept).
pub fn diagnostic_lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// `1 error`, `3 errors`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("{n} {noun}") } else { format!("{n} {noun}s") }
}

/// `; did you mean a, b?` or nothing.
pub fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() { String::new() } else { format!("; did you mean {}?", suggestions.join(", ")) }
}

/// Up to three names close to `wanted`: containing it, or within a small edit distance.
pub fn close_names<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = names
        .filter_map(|name| {
            let distance = strsim::levenshtein(wanted, name);
            (distance <= limit || name.contains(wanted) || wanted.contains(name)).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name.to_owned()).collect()
}

/// `check`'s listing: every problem (stdout, text or a JSON array), then the counts (stderr).
pub fn check(printer: &Printer, diagnostics: &[Diagnostic], images: usize) -> io::Result<()> {
    printer.data(|out| {
        if printer.json() {
            serde_json::to_writer_pretty(&mut *out, diagnostics).map_err(io::Error::from)?;
            writeln!(out)
        } else {
            diagnostics.iter().try_for_each(|diagnostic| writeln!(out, "{diagnostic}"))
        }
    })?;
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    printer.note(format!(
        "checked {}: {}, {}",
        count(images, "image"),
        count(errors, "error"),
        count(diagnostics.len() - errors, "warning")
    ));
    Ok(())
}

/// One image with a state and a reason: a line of `status --json`, and the `planned` event of a run.
#[derive(Debug, Serialize)]
pub struct ImageLine<'a> {
    pub name: &'a str,
    pub tag: &'a str,
    pub label: &'a str,
    pub state: State,
    pub reason: &'a str,
    /// Each declared platform (none for images without declared platforms).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformLine<'a>>,
}

/// One platform of an image with declared platforms.
#[derive(Debug, Serialize)]
pub struct PlatformLine<'a> {
    pub platform: String,
    pub state: State,
    pub reason: &'a str,
    /// Its manifest digest in the registry, when published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a str>,
}

impl<'a> ImageLine<'a> {
    pub fn of(tree: &'a Tree, planned: &'a Planned) -> Self {
        let image = &tree[planned.image];
        let platforms = planned
            .platforms
            .iter()
            .map(|p| PlatformLine {
                platform: p.platform.to_string(),
                state: p.state,
                reason: &p.reason,
                digest: p.descriptor.as_ref().map(|d| d.digest.as_str()),
            })
            .collect();
        Self {
            name: &image.name,
            tag: &image.tag,
            label: &image.label,
            state: planned.state,
            reason: &planned.reason,
            platforms,
        }
    }
}

/// The widest column text aligns columns wider than this no further: the formatter refuses widths over 65,535,
/// and a name that long is aligned with nothing anyway.
const MAX_COLUMN_WIDTH: usize = 80;

/// The width of a column holding texts of these `lengths`.
pub(crate) fn column_width(lengths: impl IntoIterator<Item = usize>) -> usize {
    lengths.into_iter().max().unwrap_or(0).min(MAX_COLUMN_WIDTH)
}

/// `status`: `name  tag  state: reason` per image, aligned, or one JSON object per line.
pub fn status(printer: &Printer, tree: &Tree, planned: &[Planned]) -> io::Result<()> {
    let lines: Vec<ImageLine<'_>> = planned.iter().map(|p| ImageLine::of(tree, p)).collect();
    if printer.json() {
        return lines.iter().try_for_each(|line| printer.json_line(line));
    }
    let name_width = column_width(lines.iter().map(|l| l.name.len()));
    let tag_width = column_width(lines.iter().map(|l| l.tag.len()));
    printer.data(|out| {
        lines.iter().try_for_each(|l| {
            writeln!(out, "{:<name_width$}  {:<tag_width$}  {}: {}", l.name, l.tag, l.state.as_str(), l.reason)
        })
    })
}

/// One line of `outdated --json`.
#[derive(Debug, Serialize)]
struct OutdatedLine<'a> {
    name: &'a str,
    tag: &'a str,
    reason: crate::outdated::Reason,
    detail: &'a str,
    dependents: Vec<String>,
}

/// `outdated`: per outdated image and reason, `name  tag  reason: detail (and N dependents: …)`, or one JSON
/// object per line; then a count on stderr.
pub fn outdated(
    printer: &Printer,
    analysis: &crate::analysis::Analysis,
    found: &[crate::outdated::Outdated],
) -> io::Result<()> {
    let lines: Vec<OutdatedLine<'_>> = found
        .iter()
        .map(|o| {
            let image = &analysis.tree[o.image];
            OutdatedLine {
                name: &image.name,
                tag: &image.tag,
                reason: o.reason,
                detail: &o.detail,
                dependents: crate::outdated::dependents(analysis, o.image),
            }
        })
        .collect();
    if printer.json() {
        lines.iter().try_for_each(|line| printer.json_line(line))?;
    } else {
        printer.data(|out| {
            lines.iter().try_for_each(|l| {
                let reason = match l.reason {
                    crate::outdated::Reason::Changed => "changed",
                    crate::outdated::Reason::Base => "base",
                };
                let dependents = if l.dependents.is_empty() {
                    String::new()
                } else {
                    format!(" (and {}: {})", count(l.dependents.len(), "dependent"), l.dependents.join(", "))
                };
                writeln!(out, "{}  {}  {reason}: {}{dependents}", l.name, l.tag, l.detail)
            })
        })?;
    }
    let images: BTreeSet<&str> = lines.iter().map(|l| l.name).collect();
    printer.note(format!("{} outdated", count(images.len(), "image")));
    Ok(())
}

/// `prune`'s report, as it goes: a line per reference on stderr, and with `--json` an object per reference on
/// stdout.
pub struct PruneReport<'a> {
    pub printer: &'a Printer,
}

impl Observer for PruneReport<'_> {
    fn pruning(&mut self, image: &str, keep: &str) -> io::Result<()> {
        self.printer.note(format!("Pruning old versions of {image} (keeping {keep})"));
        Ok(())
    }

    fn removal(&mut self, removal: &Removal) -> io::Result<()> {
        let short = crate::prune::short_id(&removal.id);
        let reference = &removal.reference;
        let kept_by = removal.kept_by.join(", ");
        self.printer.note(match removal.action {
            Action::Removed => format!("  {reference} ({short}) removed"),
            Action::WouldRemove => format!("  {reference} ({short}) would be removed"),
            Action::Untagged => format!("  {reference} ({short}) untagged; the image stays, also tagged {kept_by}"),
            Action::WouldUntag => {
                format!("  {reference} ({short}) would be untagged; the image stays, also tagged {kept_by}")
            }
            Action::Failed => format!(
                "  {reference} ({short}) could not be removed: {}",
                removal.error.as_deref().unwrap_or("unknown error")
            ),
        });
        if self.printer.json() { self.printer.json_line(removal) } else { Ok(()) }
    }
}

impl PruneReport<'_> {
    /// The last line: what was (or would be) done.
    pub fn finish(&self, tally: &Tally, dry_run: bool) {
        let references = |n| count(n, "reference");
        self.printer.note(if dry_run {
            format!(
                "dry run: {} checked; {} would be removed, {} untagged; nothing was changed",
                count(tally.images, "image"),
                references(tally.removed),
                tally.untagged
            )
        } else {
            format!(
                "pruned {}: {} removed, {} untagged, {} could not be removed",
                count(tally.images, "image"),
                references(tally.removed),
                tally.untagged,
                tally.failed
            )
        });
    }
}

/// What an `update` glob matched, on stderr.
pub fn update_matched(printer: &Printer, tree: &Tree, pattern: &str, matched: &Matched) {
    if matched.glob {
        let names: Vec<&str> = matched.images.iter().map(|&i| tree[i].name.as_str()).collect();
        printer.note(format!("`{pattern}` matches {}: {}", count(names.len(), "image"), names.join(", ")));
    }
}

/// `update`'s report: the summary on stderr; with `--dry-run`, the entries that would be added on stdout, under
/// `==> path <==`.
pub fn update(printer: &Printer, plan: &Plan, dry_run: bool) -> io::Result<()> {
    if dry_run {
        printer.data(|out| {
            plan.changes
                .iter()
                .try_for_each(|change| write!(out, "==> {} <==\n{}", change.path.display(), change.entry))
        })?;
    }
    printer.note(update_summary(plan, dry_run).trim_end());
    Ok(())
}

/// `updated 3 changelogs:` and one aligned line per image: name, old -> new, and whether it is a refresh.
fn update_summary(plan: &Plan, dry_run: bool) -> String {
    let changelogs = count(plan.changes.len(), "changelog");
    let mut text = if dry_run {
        format!("would update {changelogs} (dry run, nothing written):\n")
    } else {
        format!("updated {changelogs}:\n")
    };
    let name_width = column_width(plan.changes.iter().map(|c| c.name.len()));
    let old_width = column_width(plan.changes.iter().map(|c| c.old_version.as_str().len()));
    for c in &plan.changes {
        let why = if c.refresh { "  (parent updated)" } else { "" };
        let (old, new) = (c.old_version.as_str(), c.new_version.as_str());
        text.push_str(&format!("  {:<name_width$}  {old:<old_width$} -> {new}{why}\n", c.name));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names() {
        let names = ["golang1.22", "golang1.25", "openjdk-8-jre", "python3"];
        assert_eq!(close_names("golang1.2", names.into_iter()), vec!["golang1.22", "golang1.25"]);
        assert_eq!(close_names("pyhton3", names.into_iter()), vec!["python3"]);
        assert!(close_names("zzz", names.into_iter()).is_empty());
    }
}
