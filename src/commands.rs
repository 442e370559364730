//! The commands: each composes the pipeline steps (settings → tree → graph) and hands its result to
//! [`crate::report`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::cli::PruneArgs;
use crate::cli::UpdateArgs;
use crate::cli::{BuildArgs, CheckArgs, Cli, Command, GraphArgs, RenderArgs, SelectArgs, StatusArgs};
use crate::diagnostic::Diagnostic;
use crate::discover::DiscoverError;
use crate::engine::{Engine, EngineError};
use crate::execute::{self, BuildOptions};
use crate::exit;
use crate::graph::{self, Dependencies, Graph, Selection};
use crate::plan::{self, PullMode, State};
use crate::prune::{self, PruneError};
use crate::registry::{RegistryClient, RegistryError};
use crate::report::progress::{ImageLine, Reporter, Style};
use crate::report::{self, progress};
use crate::settings::{self, Config, ConfigError};
use crate::timestamp;
use crate::tree::{self, Rendered, Tree};
use crate::update::{self, UpdateError};

/// What `publish` pushed, in the log directory.
pub const PUBLISHED_REPORT: &str = "published.json";

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
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("registry client: {0}")]
    Registry(#[from] RegistryError),
    #[error("{}: cannot create the log directory: {source}", path.display())]
    LogDir { path: PathBuf, source: io::Error },
    #[error("{}: cannot write the report: {source}", path.display())]
    Report { path: PathBuf, source: io::Error },
    #[error("publish needs a registry: set `registry` in the config")]
    NoRegistry,
    #[error(transparent)]
    Update(#[from] UpdateError),
}

impl Error {
    /// The process exit code for this error (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::SUCCESS,
            Error::Engine(EngineError::Unreachable { .. }) => exit::DOCKER_UNAVAILABLE,
            Error::Engine(_) | Error::LogDir { .. } | Error::Report { .. } => exit::FAILURE,
            Error::Update(e) => e.exit_code(),
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
        Command::Status(args) => &args.directory,
        Command::Build(args) | Command::Publish(args) => &args.directory,
        Command::Prune(args) => &args.directory,
        Command::Update(args) => &args.directory,
    };
    let config = Config::load(cli.config.as_deref(), Some(directory), settings::user_config_path().as_deref())?;
    match cli.command {
        Command::Graph(args) => graph_command(config, &args),
        Command::Render(args) => render_command(config, &args),
        Command::Check(args) => check_command(config, &args),
        Command::Status(args) => status_command(config, &args),
        Command::Build(args) => build_command(config, &args, false),
        Command::Publish(args) => build_command(config, &args, true),
        Command::Prune(args) => prune_command(config, &args),
        Command::Update(args) => update_command(config, &args),
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

/// A usable tree, its graph, and the selected images in build order.
struct Selected {
    analysis: Analysis,
    graph: Graph,
    order: Vec<usize>,
}

/// Analyses the tree and applies `--select`; a tree with fatal problems is an error listing them. Errors that
/// concern one image only (e.g. an illegal tag) are printed on stderr and left to the command.
fn select(directory: &Path, config: Config, select: &SelectArgs) -> Result<Selected, Error> {
    let selection = Selection::new(&select.patterns, select.with_dependents)?;
    let mut analysis = analyse(directory, config)?;
    let errors: Vec<Diagnostic> = analysis.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    let graph = match analysis.graph.take() {
        Some(graph) if !errors.iter().any(Diagnostic::is_fatal) => graph,
        _ => return Err(Error::Tree { root: directory.to_owned(), problems: errors }),
    };
    for problem in &errors {
        eprintln!("{problem}");
    }
    let selected = selection.apply(&analysis.tree, &graph);
    let order = plan::in_order(&graph.order, &selected);
    Ok(Selected { analysis, graph, order })
}

fn graph_command(config: Config, args: &GraphArgs) -> Result<u8, Error> {
    let Selected { analysis, graph, order } = select(&args.directory, config, &args.select)?;
    let selected = order.into_iter().collect();
    let view = report::GraphView { tree: &analysis.tree, deps: &analysis.deps, graph: &graph, selected: &selected };
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

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// docker-pkg never pulls when the config says `registry:` with no value.
fn pull_mode(config: &Config, no_pull: bool) -> PullMode {
    if no_pull || config.registry.is_none() { PullMode::NoPull } else { PullMode::Pull }
}

fn image_line<'a>(tree: &'a Tree, planned: &'a plan::Planned) -> ImageLine<'a> {
    let image = &tree.images[planned.image];
    ImageLine { name: &image.name, tag: &image.tag, label: &image.label, state: planned.state, reason: &planned.reason }
}

fn status_command(config: Config, args: &StatusArgs) -> Result<u8, Error> {
    let Selected { analysis, order, .. } = select(&args.directory, config, &args.select)?;
    let tree = &analysis.tree;
    let planned = runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let registry = RegistryClient::new(&tree.config)?;
        Ok::<_, Error>(plan::classify(tree, &order, &registry, &engine, pull_mode(&tree.config, args.no_pull)).await?)
    })?;
    let mut out = io::stdout().lock();
    if args.json {
        for p in &planned {
            serde_json::to_writer(&mut out, &image_line(tree, p)).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    } else {
        let width = |f: fn(&ImageLine<'_>) -> usize| planned.iter().map(|p| f(&image_line(tree, p))).max().unwrap_or(0);
        let (name_width, tag_width) = (width(|l| l.name.len()), width(|l| l.tag.len()));
        for p in &planned {
            let line = image_line(tree, p);
            writeln!(
                out,
                "{:<name_width$}  {:<tag_width$}  {}: {}",
                line.name,
                line.tag,
                line.state.as_str(),
                line.reason
            )?;
        }
    }
    out.flush()?;
    Ok(if planned.iter().any(|p| p.state == State::Error) { exit::FAILURE } else { exit::SUCCESS })
}

/// `build`, and with `publish` also push: everything selected must end up in the registry.
fn build_command(mut config: Config, args: &BuildArgs, publish: bool) -> Result<u8, Error> {
    if args.nightly || args.snapshot {
        // Once per run, so every image (and every `image_tag`) gets the same suffix.
        config.tag_suffix = Some(timestamp::tag_suffix(SystemTime::now(), args.snapshot));
    }
    if publish && config.registry().is_empty() {
        return Err(Error::NoRegistry);
    }
    let Selected { analysis, graph, order } = select(&args.directory, config, &args.select)?;
    let Analysis { tree, rendered, .. } = analysis;
    let log_dir = args.log_dir.clone().unwrap_or_else(|| tree.config.log_dir.clone());
    std::fs::create_dir_all(&log_dir).map_err(|source| Error::LogDir { path: log_dir.clone(), source })?;
    let options = BuildOptions {
        jobs: args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(2, usize::from), usize::from),
        use_cache: args.use_cache,
        pull: pull_mode(&tree.config, args.no_pull),
        fail_fast: args.fail_fast,
        verify_timeout: Duration::from_secs(args.verify_timeout),
        log_dir: log_dir.clone(),
        publish: publish.then(|| tree.config.publish_tags.clone()),
    };
    // Publishing must never overwrite a published tag: it always asks the registry first.
    let lookup = if publish { PullMode::Pull } else { options.pull };
    let tree = Arc::new(tree);
    runtime()?.block_on(async move {
        let engine = Engine::connect().await?;
        let registry = RegistryClient::new(&tree.config)?;
        let planned = plan::classify(&tree, &order, &registry, &engine, lookup).await?;
        let has_work = |state| state == State::ToBuild || (publish && state == State::Built);
        let work = planned.iter().filter(|p| has_work(p.state)).count();
        let reporter = Arc::new(Reporter::new(Style::detect(args.json), work));
        for p in &planned {
            reporter.planned(&image_line(&tree, p));
        }
        let cancel = CancellationToken::new();
        tokio::spawn(interrupt_on_ctrl_c(cancel.clone(), reporter.clone()));
        let outcome =
            execute::build(tree, &graph, rendered, planned, engine, registry, options, reporter.clone(), &cancel).await;
        if publish {
            write_published(&log_dir, &outcome.pushed)?;
        }
        let done = |state: State| if publish { state == State::Published } else { state.is_success() };
        let mut summary = outcome.summary;
        summary.exit_code = if outcome.interrupted {
            exit::INTERRUPTED
        } else if outcome.rows.iter().all(|row| done(row.state)) {
            exit::SUCCESS
        } else {
            exit::FAILURE
        };
        reporter.summary(&outcome.rows, &summary);
        Ok(summary.exit_code)
    })
}

/// `published.json` in the log directory: what this run pushed, written whole or not at all.
fn write_published(log_dir: &Path, pushed: &[execute::Pushed]) -> Result<(), Error> {
    let path = log_dir.join(PUBLISHED_REPORT);
    let failed = |source: io::Error| Error::Report { path: path.clone(), source };
    let json = serde_json::to_vec_pretty(pushed).map_err(|e| failed(e.into()))?;
    let temporary = log_dir.join(format!(".{PUBLISHED_REPORT}.tmp"));
    std::fs::write(&temporary, [json.as_slice(), b"\n"].concat()).map_err(failed)?;
    std::fs::rename(&temporary, &path).map_err(failed)
}

impl From<PruneError> for Error {
    fn from(error: PruneError) -> Self {
        match error {
            PruneError::Engine(e) => Error::Engine(e),
            PruneError::Output(e) => Error::Output(e),
        }
    }
}

/// Prunes the matching images only (not what they depend on, as docker-pkg), children first.
fn prune_command(config: Config, args: &PruneArgs) -> Result<u8, Error> {
    let select_args = SelectArgs { patterns: args.patterns.clone(), with_dependents: args.with_dependents };
    let Selected { analysis, graph, .. } = select(&args.directory, config, &select_args)?;
    let tree = &analysis.tree;
    let matching = Selection::new(&args.patterns, args.with_dependents)?.matching(tree, &graph);
    let children_first: Vec<usize> = plan::in_order(&graph.order, &matching).into_iter().rev().collect();
    let targets = prune::targets(tree, &children_first, args.nightly.as_deref())
        .map_err(|problems| Error::Tree { root: args.directory.clone(), problems })?;
    let options = prune::Options { dry_run: args.dry_run, json: args.json };
    let summary = runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
        let summary = prune::prune(tree, &targets, &engine, &options, &mut out, &mut err).await?;
        out.flush()?;
        Ok::<_, Error>(summary)
    })?;
    Ok(if summary.failed == 0 { exit::SUCCESS } else { exit::FAILURE })
}

/// `update`: needs a usable tree and its graph (for the dependents); image-only problems, such as an illegal
/// tag, do not stop it, since the new version is checked anyway.
fn update_command(config: Config, args: &UpdateArgs) -> Result<u8, Error> {
    let mut analysis = analyse(&args.directory, config)?;
    let fatal: Vec<Diagnostic> = analysis.diagnostics.iter().filter(|d| d.is_fatal()).cloned().collect();
    let graph = match analysis.graph.take() {
        Some(graph) if fatal.is_empty() => graph,
        _ => return Err(Error::Tree { root: args.directory.clone(), problems: fatal }),
    };
    let options = update::Options {
        name: &args.name,
        reason: &args.reason,
        version: args.version.as_deref(),
        dry_run: args.dry_run,
    };
    Ok(update::run(&analysis.tree, &graph, &options, &mut io::stdout().lock())?)
}

/// First Ctrl-C: stop launching and stop what runs (the run then ends with its summary); second: leave now.
async fn interrupt_on_ctrl_c(cancel: CancellationToken, reporter: Arc<progress::Reporter>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        reporter.note("interrupted: stopping running builds and verifications (Ctrl-C again to quit now)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    }
}
