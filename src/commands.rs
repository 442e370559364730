//! The commands: each composes the pipeline steps (settings → tree → graph) and hands its result to
//! [`crate::report`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cli::{CheckArgs, Cli, Command, GraphArgs, RenderArgs};
use crate::diagnostic::Diagnostic;
use crate::discover::DiscoverError;
use crate::exit;
use crate::graph::{self, Dependencies, Graph, Selection};
use crate::report;
use crate::settings::{self, Config, ConfigError};
use crate::tree::{self, Rendered, Tree};

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("{} cannot be used ({}):\n{}", root.display(), report::count(problems.len(), "error"), report::diagnostic_lines(problems))]
    Tree { root: PathBuf, problems: Vec<Diagnostic> },
    #[error("no image named `{name}` in {}{}", root.display(), report::did_you_mean(suggestions))]
    UnknownImage { name: String, root: PathBuf, suggestions: Vec<String> },
    #[error("{}: {}", .0.location(), .0.message)]
    Render(Diagnostic),
    #[error("invalid --select pattern: {0}")]
    Select(#[from] globset::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

impl Error {
    /// The process exit code for this error (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::SUCCESS,
            _ => exit::INPUT,
        }
    }
}

/// Runs the parsed command line; returns the exit code of a command that ran to its end.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let directory = match &cli.command {
        Command::Graph(args) => &args.directory,
        Command::Render(args) => &args.directory,
        Command::Check(args) => &args.directory,
    };
    let config = Config::load(cli.config.as_deref(), Some(directory), settings::user_config_path().as_deref())?;
    match cli.command {
        Command::Graph(args) => graph_command(config, &args),
        Command::Render(args) => render_command(config, &args),
        Command::Check(args) => check_command(config, &args),
    }
}

/// A tree taken as far as its graph.
struct Analysis {
    tree: Tree,
    rendered: Vec<Option<Rendered>>,
    deps: Dependencies,
    graph: Option<Graph>,
    /// Every problem found, sorted by file.
    diagnostics: Vec<Diagnostic>,
}

fn analyse(directory: &Path, config: Config) -> Result<Analysis, Error> {
    let tree = Tree::scan(directory, config)?;
    let (rendered, render_problems) = tree.render_all();
    let (deps, dependency_problems) = graph::resolve(&tree, &rendered);
    let mut diagnostics: Vec<Diagnostic> =
        tree.diagnostics.iter().cloned().chain(render_problems).chain(dependency_problems).collect();
    let graph = match Graph::build(tree.images.len(), &deps) {
        Ok(graph) => Some(graph),
        Err(cycle) => {
            diagnostics.push(cycle.diagnostic(&tree, &deps));
            None
        }
    };
    diagnostics.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    Ok(Analysis { tree, rendered, deps, graph, diagnostics })
}

fn graph_command(config: Config, args: &GraphArgs) -> Result<u8, Error> {
    let selection = Selection::new(&args.select.patterns, args.select.with_dependents)?;
    let analysis = analyse(&args.directory, config)?;
    let fatal: Vec<Diagnostic> = analysis.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    let (Some(graph), false) = (&analysis.graph, fatal.iter().any(Diagnostic::is_fatal)) else {
        return Err(Error::Tree { root: args.directory.clone(), problems: fatal });
    };
    // Images that cannot be built as named still have a place in the graph; say why on stderr.
    for problem in &fatal {
        eprintln!("{problem}");
    }
    let selected = selection.apply(&analysis.tree, graph);
    let view = report::GraphView { tree: &analysis.tree, deps: &analysis.deps, graph, selected: &selected };
    let mut out = io::stdout().lock();
    view.write(args.format, &mut out)?;
    out.flush()?;
    Ok(exit::SUCCESS)
}

fn render_command(config: Config, args: &RenderArgs) -> Result<u8, Error> {
    let tree = Tree::scan(&args.directory, config)?;
    let Some(image) = tree.find(&args.name) else {
        return Err(Error::UnknownImage {
            name: args.name.clone(),
            root: args.directory.clone(),
            suggestions: report::close_names(&args.name, tree.images.iter().map(|i| i.name.as_str())),
        });
    };
    let dockerfile = tree.render(image).map_err(|e| Error::Render(tree::template_diagnostic(&e)))?;
    let mut out = io::stdout().lock();
    out.write_all(dockerfile.as_bytes())?;
    out.flush()?;
    Ok(exit::SUCCESS)
}

fn check_command(config: Config, args: &CheckArgs) -> Result<u8, Error> {
    let analysis = analyse(&args.directory, config)?;
    let mut diagnostics = analysis.diagnostics;
    if analysis.tree.config.force_numeric_user {
        for (image, rendered) in analysis.tree.images.iter().zip(&analysis.rendered) {
            if rendered.as_ref().is_some_and(|r| !r.has_numeric_user()) {
                diagnostics.push(
                    Diagnostic::error(
                        image.template_path(),
                        "the last USER instruction is not numeric (force_numeric_user is set)",
                    )
                    .for_image(&image.name)
                    .image_only(),
                );
            }
        }
        diagnostics.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &diagnostics).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        for diagnostic in &diagnostics {
            writeln!(out, "{diagnostic}")?;
        }
    }
    out.flush()?;
    eprintln!(
        "checked {}: {}, {}",
        report::count(analysis.tree.images.len(), "image"),
        report::count(errors, "error"),
        report::count(diagnostics.len() - errors, "warning")
    );
    Ok(if errors == 0 { exit::SUCCESS } else { exit::FAILURE })
}
