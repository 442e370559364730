//! The commands: each composes the pipeline steps (settings → analysis → plan → execute) and hands what it
//! got to [`crate::report`], which renders it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::analysis::Analysis;
use crate::cli::{Cli, Shell};
use crate::diagnostic::Diagnostic;
use crate::discover::DiscoverError;
use crate::engine::{Builders, Engine, EngineError};
use crate::execute::{self, BuildOptions, Pushed, Services};
use crate::exit;
use crate::graph::Selection;
use crate::logging::{self, Verbosity};
use crate::outdated;
use crate::pipeline;
use crate::plan::{self, Planned, PullMode, State};
use crate::prune::{self, PruneError};
use crate::registry::{RegistryClient, RegistryError};
use crate::report::progress::Reporter;
use crate::report::{self, GraphView, ImageLine, Printer, PruneReport};
use crate::settings::{
    self, BuildSettings, CheckSettings, Command, GraphSettings, OutdatedSettings, PipelineSettings, PruneSettings,
    RenderSettings, SettingsError, StatusSettings, UpdateSettings, UpdateTarget,
};
use crate::since;
use crate::timestamp;
use crate::tree::{ImageId, Tree};
use crate::update::{self, TreeLock, UpdateError};

/// What `publish` pushed, in the log directory.
pub const PUBLISHED_REPORT: &str = "published.json";

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("{} cannot be used ({}):\n{}", root.display(), report::count(problems.len(), "error"), report::diagnostic_lines(problems))]
    Tree { root: PathBuf, problems: Vec<Diagnostic> },
    #[error("no image named `{name}` in {}{}", root.display(), report::did_you_mean(suggestions))]
    UnknownImage { name: String, root: PathBuf, suggestions: Vec<String> },
    #[error("{}: {}", .0.location(), .0.message)]
    Render(Diagnostic),
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("registry client: {0}")]
    Registry(#[from] RegistryError),
    #[error("{}: cannot create the log directory: {source}", path.display())]
    LogDir { path: PathBuf, source: io::Error },
    #[error("{}: cannot write the report: {source}", path.display())]
    Report { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Update(#[from] UpdateError),
    #[error(transparent)]
    Since(#[from] since::SinceError),
}

impl Error {
    /// The process exit code for this error (see [`crate::exit`]); every variant says its own.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::SUCCESS,
            Error::Output(_) | Error::Runtime(_) => exit::FAILURE,
            Error::Engine(EngineError::Unreachable { .. }) => exit::DOCKER_UNAVAILABLE,
            Error::Engine(EngineError::Api(_) | EngineError::TooOld { .. })
            | Error::LogDir { .. }
            | Error::Report { .. } => exit::FAILURE,
            Error::Settings(_)
            | Error::Discover(_)
            | Error::Tree { .. }
            | Error::UnknownImage { .. }
            | Error::Render(_)
            | Error::Since(_)
            | Error::Registry(_) => exit::INPUT,
            Error::Update(e) => match e {
                UpdateError::Write { .. } | UpdateError::Lock { .. } => exit::FAILURE,
                UpdateError::UnknownImage { .. }
                | UpdateError::NoMatch { .. }
                | UpdateError::Pattern(_)
                | UpdateError::VersionWithGlob { .. }
                | UpdateError::EmptyReason
                | UpdateError::NotUpdated(_) => exit::INPUT,
            },
        }
    }
}

impl From<PruneError> for Error {
    fn from(error: PruneError) -> Self {
        match error {
            PruneError::Engine(e) => Error::Engine(e),
            PruneError::Output(e) => Error::Output(e),
        }
    }
}

/// Runs the parsed command line; returns the exit code of a command that ran to its end.
pub fn run(cli: Cli) -> Result<u8, Error> {
    logging::init(Verbosity { verbose: cli.verbose, quiet: cli.quiet }, cli.log_format);
    let (config, command) = settings::resolve(cli)?;
    match command {
        Command::Outdated(settings) => outdated_command(Analysis::of(&settings.directory, config, None)?, &settings),
        Command::Pipeline(settings) => pipeline_command(Analysis::of(&settings.directory, config, None)?, &settings),
        Command::Completions(shell) => completions_command(shell),
        Command::Man => man_command(),
        Command::Graph(settings) => graph_command(Analysis::of(&settings.directory, config, None)?, &settings),
        Command::Render(settings) => render_command(Tree::scan(&settings.directory, config, None)?, &settings),
        Command::Check(settings) => check_command(Analysis::of(&settings.directory, config, None)?, &settings),
        Command::Status(settings) => status_command(Analysis::of(&settings.directory, config, None)?, &settings),
        Command::Build(settings) => {
            let analysis = Analysis::of(&settings.directory, config, settings.tag_suffix.as_deref())?;
            build_command(analysis, &settings)
        }
        Command::Prune(settings) => prune_command(Analysis::of(&settings.directory, config, None)?, &settings),
        Command::Update(settings) => {
            let printer = Printer::new(false);
            let _lock = TreeLock::acquire(&settings.directory, || {
                printer.note(format!("waiting for another imgraph update of {}", settings.directory.display()));
            })?;
            update_command(Analysis::of(&settings.directory, config, None)?, &settings)
        }
    }
}

/// The images `selection` selects, `--since` resolved through git.
fn selected(analysis: &Analysis, selection: &Selection) -> Result<BTreeSet<ImageId>, Error> {
    let selection = match selection.since_reference() {
        Some(reference) => selection.within(since::changed(analysis, reference)?),
        None => selection.clone(),
    };
    Ok(selection.apply(&analysis.tree, &analysis.graph))
}

/// Reports on stderr the errors that concern no image (directories that could not be read as one), and says
/// whether there were any: they fail the run, but only when it covers the whole tree.
fn report_unnamed(printer: &Printer, analysis: &Analysis, whole_tree: bool) -> bool {
    let unnamed: Vec<&Diagnostic> = analysis.unnamed_errors().collect();
    if whole_tree {
        printer.diagnostics(unnamed.iter().copied());
    }
    whole_tree && !unnamed.is_empty()
}

/// `graph` prints what it can: every selected image but those on a cycle. It exits 1 when the graph printed is
/// not the whole selection: something was left out (a directory no changelog names, a duplicate name, a
/// cycle), or an image's dependencies could not all be worked out (its template does not render, or it names
/// an unknown one). An image Docker would refuse the name or tag of is listed; the error is said on stderr.
fn graph_command(analysis: Analysis, settings: &GraphSettings) -> Result<u8, Error> {
    let printer = Printer::new(false);
    let tree = &analysis.tree;
    let selected = selected(&analysis, &settings.selection)?;
    let concerns_selected =
        |d: &&Diagnostic| d.image.as_deref().and_then(|n| tree.get(n)).is_some_and(|id| selected.contains(&id));
    printer.diagnostics(analysis.diagnostics.iter().filter(|d| d.is_error()).filter(concerns_selected));
    let mut incomplete = report_unnamed(&printer, &analysis, settings.selection.is_all());
    for (dir, kept) in &tree.duplicates {
        if selected.contains(kept) {
            printer.note(format!(
                "left out of the graph: {} (its name `{}` is taken)",
                dir.display(),
                tree[*kept].name
            ));
            incomplete = true;
        }
    }
    let on_cycle: BTreeSet<ImageId> = selected.iter().copied().filter(|&id| analysis.graph.is_on_cycle(id)).collect();
    for &id in &on_cycle {
        printer.note(format!("left out of the graph: {} (it is on a dependency cycle)", tree[id].name));
        incomplete = true;
    }
    incomplete |= selected.iter().any(|&id| !analysis.dependencies_known(id));
    let shown: BTreeSet<ImageId> = selected.difference(&on_cycle).copied().collect();
    let view = GraphView { tree, deps: &analysis.deps, graph: &analysis.graph, selected: &shown };
    printer.data(|out| view.write(settings.format, out))?;
    Ok(if incomplete { exit::FAILURE } else { exit::SUCCESS })
}

fn render_command(tree: Tree, settings: &RenderSettings) -> Result<u8, Error> {
    let Some(id) = tree.find(&settings.name) else {
        return Err(Error::UnknownImage {
            name: settings.name.clone(),
            root: settings.directory.clone(),
            suggestions: report::close_names(&settings.name, tree.images().map(|(_, i)| i.name.as_str())),
        });
    };
    let dockerfile = tree.render(id).map_err(|e| Error::Render(crate::tree::template_diagnostic(&e)))?;
    Printer::new(false).data(|out| out.write_all(dockerfile.as_bytes()))?;
    Ok(exit::SUCCESS)
}

fn check_command(analysis: Analysis, settings: &CheckSettings) -> Result<u8, Error> {
    let mut diagnostics = analysis.diagnostics;
    let tree = &analysis.tree;
    if tree.config.force_numeric_user {
        for (id, rendered) in analysis.rendered.iter() {
            if rendered.as_ref().is_some_and(|r| !r.has_numeric_user()) {
                let image = &tree[id];
                diagnostics.push(
                    Diagnostic::error(
                        image.template_path(),
                        "the last USER instruction is not numeric (force_numeric_user is set)",
                    )
                    .for_image(&image.name),
                );
            }
        }
        diagnostics.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    }
    report::check(&Printer::new(settings.json), &diagnostics, tree.len())?;
    Ok(if diagnostics.iter().any(Diagnostic::is_error) { exit::FAILURE } else { exit::SUCCESS })
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Error::Runtime)
}

fn status_command(analysis: Analysis, settings: &StatusSettings) -> Result<u8, Error> {
    let printer = Printer::new(settings.json);
    let unnamed = report_unnamed(&printer, &analysis, settings.selection.is_all());
    let order = analysis.graph.in_order(&selected(&analysis, &settings.selection)?);
    let planned = runtime()?.block_on(async {
        let builders = Builders::new(Engine::lazy(), &analysis.tree.config.builders);
        let registry = RegistryClient::new(&analysis.tree.config)?;
        Ok::<_, Error>(plan::classify(&analysis, &order, &registry, &builders, settings.lookup).await?)
    })?;
    report::status(&printer, &analysis.tree, &planned)?;
    let failed = planned.iter().any(|p| matches!(p.state, State::Error | State::Skipped));
    Ok(if failed || unnamed { exit::FAILURE } else { exit::SUCCESS })
}

/// `build`, and with `publish` also push: everything selected must end up in the registry.
fn build_command(analysis: Analysis, settings: &BuildSettings) -> Result<u8, Error> {
    let printer = Printer::new(settings.json);
    let unnamed = report_unnamed(&printer, &analysis, settings.selection.is_all());
    let order = analysis.graph.in_order(&selected(&analysis, &settings.selection)?);
    let log_dir = settings.log_dir.clone();
    std::fs::create_dir_all(&log_dir).map_err(|source| Error::LogDir { path: log_dir.clone(), source })?;
    let options = BuildOptions {
        jobs: settings.jobs,
        use_cache: settings.use_cache,
        pull: settings.pull,
        fail_fast: settings.fail_fast,
        verify_timeout: settings.verify_timeout,
        log_dir: log_dir.clone(),
        publish: settings.publish.clone(),
    };
    let publish = settings.publish.is_some();
    let analysis = Arc::new(analysis);
    runtime()?.block_on(async move {
        let builders = Builders::new(Engine::lazy(), &analysis.tree.config.builders);
        let registry = RegistryClient::new(&analysis.tree.config)?;
        let mut planned = plan::classify(&analysis, &order, &registry, &builders, settings.lookup).await?;
        // `--only`: the parents left out must be published already; their pulls and fingerprints need them.
        let outside = outside_parents(&analysis, &order);
        let parents = plan::classify(&analysis, &outside, &registry, &builders, PullMode::Pull).await?;
        skip_without_published_parents(&analysis, &mut planned, &parents);
        let has_work = |state| state == State::ToBuild || (publish && state == State::Built);
        let work = planned.iter().filter(|p| has_work(p.state)).count();
        let reporter = Arc::new(Reporter::new(printer.style(), work));
        for p in &planned {
            reporter.planned(&ImageLine::of(&analysis.tree, p));
        }
        let cancel = CancellationToken::new();
        tokio::spawn(interrupt_on_ctrl_c(cancel.clone(), reporter.clone()));
        let services = Services { builders, registry };
        let outcome = execute::build(analysis, planned, parents, services, options, reporter.clone(), &cancel).await;
        if publish {
            write_published(&log_dir, &outcome.pushed)?;
        }
        let done = |state: State| if publish { state == State::Published } else { state.is_success() };
        let mut summary = outcome.summary;
        summary.exit_code = if outcome.interrupted {
            exit::INTERRUPTED
        } else if outcome.rows.iter().all(|row| done(row.state)) && !unnamed {
            exit::SUCCESS
        } else {
            exit::FAILURE
        };
        reporter.summary(&outcome.rows, &summary);
        if let Some(path) = &settings.junit {
            let xml = report::junit::render(if publish { "publish" } else { "build" }, &outcome.rows, done);
            write_atomically(path, xml.as_bytes()).map_err(|source| Error::Report { path: path.clone(), source })?;
        }
        Ok(summary.exit_code)
    })
}

/// The direct parents of `order`'s images that are not in it (with `--only`), in build order.
fn outside_parents(analysis: &Analysis, order: &[ImageId]) -> Vec<ImageId> {
    let selected: BTreeSet<ImageId> = order.iter().copied().collect();
    let outside: BTreeSet<ImageId> =
        order.iter().flat_map(|&id| analysis.graph.parents(id)).filter(|parent| !selected.contains(parent)).collect();
    analysis.graph.in_order(&outside)
}

/// Skips the images that need a parent left out of the selection that is not published, and what depends on
/// them: nothing would provide it.
fn skip_without_published_parents(analysis: &Analysis, planned: &mut [Planned], parents: &[Planned]) {
    let tree = &analysis.tree;
    let mut missing: BTreeMap<ImageId, String> = parents
        .iter()
        .filter(|p| p.state != State::Published)
        .map(|p| (p.image, format!("needs {}, which is not published (--only builds no parent)", tree[p.image].name)))
        .collect();
    for p in planned.iter_mut() {
        let why = analysis.graph.parents(p.image).into_iter().find_map(|parent| missing.get(&parent).cloned());
        if let Some(why) = why.filter(|_| p.state != State::Error) {
            p.state = State::Skipped;
            p.reason.clone_from(&why);
            missing.insert(p.image, format!("needs {}, which is skipped", tree[p.image].name));
        }
    }
}

/// `published.json` in the log directory: what this run pushed, written whole or not at all.
fn write_published(log_dir: &Path, pushed: &[Pushed]) -> Result<(), Error> {
    let path = log_dir.join(PUBLISHED_REPORT);
    let failed = |source: io::Error| Error::Report { path: path.clone(), source };
    let json = serde_json::to_vec_pretty(pushed).map_err(|e| failed(e.into()))?;
    write_atomically(&path, &[json.as_slice(), b"\n"].concat()).map_err(failed)
}

/// Writes `path` whole or not at all: a temporary file beside it, renamed over it.
fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut temporary, content)?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Prunes the matching images only (not what they depend on, as docker-pkg), children first.
fn prune_command(analysis: Analysis, settings: &PruneSettings) -> Result<u8, Error> {
    let tree = &analysis.tree;
    let matching = settings.selection.matching(tree, &analysis.graph);
    let children_first: Vec<ImageId> = analysis.graph.in_order(&matching).into_iter().rev().collect();
    let targets = prune::targets(tree, &children_first, settings.nightly.as_deref())
        .map_err(|problems| Error::Tree { root: settings.directory.clone(), problems })?;
    let printer = Printer::new(settings.json);
    let mut report = PruneReport { printer: &printer };
    let tally = runtime()?.block_on(async {
        let builders = Builders::new(Engine::connect().await?, &tree.config.builders);
        Ok::<_, Error>(prune::prune(tree, &targets, &builders, settings.dry_run, &mut report).await?)
    })?;
    report.finish(&tally, settings.dry_run);
    Ok(if tally.failed == 0 { exit::SUCCESS } else { exit::FAILURE })
}

/// `update`: the tree's lock is held. The changelogs of the images to update must be readable and their
/// versions bumpable; other flaws of the tree do not stop it, since the new files are checked anyway.
fn update_command(analysis: Analysis, settings: &UpdateSettings) -> Result<u8, Error> {
    let printer = Printer::new(false);
    // An unreadable image may be a dependent: say so, though it cannot be updated.
    printer.diagnostics(analysis.unnamed_errors());
    let analysis = Arc::new(analysis);
    let tree = &analysis.tree;
    let (matched, reasons, pattern) = match &settings.target {
        UpdateTarget::Name(name) => {
            let matched = update::matching(tree, name)?;
            report::update_matched(&printer, tree, name, &matched);
            (matched, None, name.as_str())
        }
        UpdateTarget::Outdated => {
            let registry = RegistryClient::new(&tree.config)?;
            let order = analysis.graph.order.clone();
            let found = runtime()?.block_on(outdated::find(&analysis, &order, &registry))?;
            let mut reasons: BTreeMap<ImageId, String> = BTreeMap::new();
            for item in &found {
                let text = settings.reason.clone().unwrap_or_else(|| outdated_reason(item));
                let entry = reasons.entry(item.image).or_default();
                if !entry.contains(&text) {
                    if !entry.is_empty() {
                        entry.push('\n');
                    }
                    entry.push_str(&text);
                }
            }
            if reasons.is_empty() {
                printer.note("nothing is outdated: nothing to update");
                return Ok(exit::SUCCESS);
            }
            let images: Vec<ImageId> = reasons.keys().copied().collect();
            (update::Matched { images, glob: false }, Some(reasons), "--outdated")
        }
    };
    let request = update::Request {
        pattern,
        reasons: match (&reasons, &settings.reason) {
            (Some(each), _) => update::Reasons::Each(each),
            (None, Some(reason)) => update::Reasons::Same(reason),
            (None, None) => update::Reasons::Same(""),
        },
        version: settings.version.as_deref(),
    };
    let author = update::Author::resolve(&tree.config, &tree.root);
    let date = timestamp::rfc2822_local(SystemTime::now());
    let plan = update::plan(tree, &analysis.graph, &matched, &request, &author, &date)?;
    if !settings.dry_run {
        plan.write()?;
    }
    report::update(&printer, &plan, settings.dry_run)?;
    Ok(exit::SUCCESS)
}

/// The default changelog text for an outdated image.
fn outdated_reason(item: &outdated::Outdated) -> String {
    match (&item.reason, &item.base) {
        (outdated::Reason::Base, Some((base, old, new))) => {
            format!("* Rebuild on {base}, updated upstream: {old} -> {new}.")
        }
        _ => format!("* Rebuild: the content changed without a version bump ({}).", item.detail),
    }
}

/// `outdated`: the published images that no longer match, with what depends on them; exit 1 if any.
fn outdated_command(analysis: Analysis, settings: &OutdatedSettings) -> Result<u8, Error> {
    let printer = Printer::new(settings.json);
    let order = analysis.graph.in_order(&selected(&analysis, &settings.selection)?);
    let analysis = Arc::new(analysis);
    let registry = RegistryClient::new(&analysis.tree.config)?;
    let found = runtime()?.block_on(outdated::find(&analysis, &order, &registry))?;
    report::outdated(&printer, &analysis, &found)?;
    Ok(if found.is_empty() { exit::SUCCESS } else { exit::FAILURE })
}

/// `pipeline`: the CI pipeline of the images that need publishing (all selected ones with `--all`), on
/// stdout. Images that cannot be built get their job too, which then fails saying why, so that CI shows it.
fn pipeline_command(analysis: Analysis, settings: &PipelineSettings) -> Result<u8, Error> {
    let printer = Printer::new(false);
    report_unnamed(&printer, &analysis, settings.selection.is_all());
    let order = analysis.graph.in_order(&selected(&analysis, &settings.selection)?);
    let work = if settings.all {
        order
    } else {
        let registry = RegistryClient::new(&analysis.tree.config)?;
        runtime()?.block_on(plan::unpublished(&analysis, &order, &registry))
    };
    let text = pipeline::render(&analysis, &work, settings.format, &settings.jobs);
    printer.data(|out| out.write_all(text.as_bytes()))?;
    Ok(exit::SUCCESS)
}

/// The completion script of `shell`: it asks imgraph itself (through `COMPLETE=<shell>`, see `main`) for
/// commands, options and image names as you type.
fn completions_command(shell: Shell) -> Result<u8, Error> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(shell.name())
        .ok_or_else(|| Error::Output(io::Error::other(format!("no completions for {}", shell.name()))))?;
    // The script calls this very binary back, wherever it lives.
    let program = std::env::current_exe().map_or_else(|_| "imgraph".to_owned(), |p| p.to_string_lossy().into_owned());
    Printer::new(false).data(|out| completer.write_registration("COMPLETE", "imgraph", "imgraph", &program, out))?;
    Ok(exit::SUCCESS)
}

/// The manual page, generated from the command-line definitions.
fn man_command() -> Result<u8, Error> {
    let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
    Printer::new(false).data(|out| page.render(out))?;
    Ok(exit::SUCCESS)
}

/// First Ctrl-C: stop launching and stop what runs (the run then ends with its summary); second: leave now.
async fn interrupt_on_ctrl_c(cancel: CancellationToken, reporter: Arc<Reporter>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        reporter.note("interrupted: stopping running builds and verifications (Ctrl-C again to quit now)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    }
}
