//! Per-command settings: the command line and the config resolved into exactly what each command needs,
//! before anything runs (the config itself is never changed by a flag).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::cli::{self, BuildArgs, Cli, SelectArgs};
use crate::config::{self, Config, ConfigError};
use crate::graph::Selection;
use crate::pipeline;
use crate::plan::PullMode;
use crate::report::graph::Format;
use crate::timestamp;

/// A command, ready to run.
#[derive(Debug)]
pub enum Command {
    Graph(GraphSettings),
    Render(RenderSettings),
    Check(CheckSettings),
    Status(StatusSettings),
    /// `build`, and `publish` (see [`BuildSettings::publish`]).
    Build(BuildSettings),
    Prune(PruneSettings),
    Update(UpdateSettings),
    Outdated(OutdatedSettings),
    Pipeline(PipelineSettings),
    /// Print a shell's completion script.
    Completions(cli::Shell),
    /// Print the manual page.
    Man,
}

/// Why the command line cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid --select pattern: {0}")]
    Select(#[from] globset::Error),
    #[error("{0} needs a registry: set `registry` in the config")]
    NoRegistry(&'static str),
    #[error("update needs the tree's DIRECTORY (or --outdated DIR)")]
    NoDirectory,
}

#[derive(Debug)]
pub struct GraphSettings {
    pub directory: PathBuf,
    pub format: Format,
    pub selection: Selection,
}

#[derive(Debug)]
pub struct RenderSettings {
    pub directory: PathBuf,
    pub name: String,
}

#[derive(Debug)]
pub struct CheckSettings {
    pub directory: PathBuf,
    pub json: bool,
}

#[derive(Debug)]
pub struct StatusSettings {
    pub directory: PathBuf,
    pub selection: Selection,
    pub lookup: PullMode,
    pub json: bool,
}

#[derive(Debug)]
pub struct BuildSettings {
    pub directory: PathBuf,
    pub selection: Selection,
    pub jobs: usize,
    pub use_cache: bool,
    /// Whether to pull parents and base images before building.
    pub pull: PullMode,
    /// How the plan looks images up: `publish` always asks the registry first, so it never overwrites a tag.
    pub lookup: PullMode,
    pub fail_fast: bool,
    pub json: bool,
    pub log_dir: PathBuf,
    pub verify_timeout: Duration,
    /// `--nightly`/`--snapshot`: appended to every tag, computed once per run.
    pub tag_suffix: Option<String>,
    /// `publish`: push every image under its version and these extra tags.
    pub publish: Option<Vec<String>>,
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
}

#[derive(Debug)]
pub struct PruneSettings {
    pub directory: PathBuf,
    /// The images pruned: the matching ones only, not what they depend on.
    pub selection: Selection,
    pub nightly: Option<String>,
    pub dry_run: bool,
    pub json: bool,
}

#[derive(Debug)]
pub struct PipelineSettings {
    pub directory: PathBuf,
    pub format: pipeline::Format,
    pub selection: Selection,
    /// A job per selected image, published or not.
    pub all: bool,
    pub jobs: pipeline::JobOptions,
}

#[derive(Debug)]
pub struct OutdatedSettings {
    pub directory: PathBuf,
    pub selection: Selection,
    pub json: bool,
}

/// Which images `update` starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateTarget {
    /// An exact image name, or a glob over names when it has glob characters.
    Name(String),
    /// Every outdated image.
    Outdated,
}

#[derive(Debug)]
pub struct UpdateSettings {
    pub directory: PathBuf,
    pub target: UpdateTarget,
    /// The change text; may span several lines. `None` with `--outdated`: each entry says what changed.
    pub reason: Option<String>,
    /// The named image's new version, instead of an automatic bump.
    pub version: Option<String>,
    /// Print the entries, write nothing.
    pub dry_run: bool,
}

/// Loads the config (the `-c` file, else the usual places, with the user's file underneath) and resolves the
/// command line against it.
pub fn resolve(cli: Cli) -> Result<(Config, Command), SettingsError> {
    let directory = match &cli.command {
        cli::Command::Graph(args) => &args.directory,
        cli::Command::Render(args) => &args.directory,
        cli::Command::Check(args) => &args.directory,
        cli::Command::Status(args) => &args.directory,
        cli::Command::Build(args) | cli::Command::Publish(args) => &args.directory,
        cli::Command::Prune(args) => &args.directory,
        cli::Command::Update(args) => match (&args.outdated, &args.directory) {
            (Some(directory), _) | (None, Some(directory)) => directory,
            // clap requires one or the other.
            (None, None) => return Err(SettingsError::NoDirectory),
        },
        cli::Command::Outdated(args) => &args.directory,
        cli::Command::Pipeline(args) => &args.directory,
        // These read no tree and no config.
        cli::Command::Completions(args) => return Ok((Config::defaults(), Command::Completions(args.shell))),
        cli::Command::Man => return Ok((Config::defaults(), Command::Man)),
    };
    let directory = directory.clone();
    let config = Config::load(cli.config.as_deref(), Some(&directory), config::user_config_path().as_deref())?;
    let config_arg = cli.config.clone();
    let command = match cli.command {
        cli::Command::Graph(args) => Command::Graph(GraphSettings {
            directory: args.directory,
            format: match args.format {
                cli::GraphFormat::Text => Format::Text,
                cli::GraphFormat::Json => Format::Json,
                cli::GraphFormat::Dot => Format::Dot,
                cli::GraphFormat::Mermaid => Format::Mermaid,
            },
            selection: selection(&args.select)?,
        }),
        cli::Command::Render(args) => Command::Render(RenderSettings { directory: args.directory, name: args.name }),
        cli::Command::Check(args) => Command::Check(CheckSettings { directory: args.directory, json: args.json }),
        cli::Command::Status(args) => Command::Status(StatusSettings {
            selection: selection(&args.select)?,
            lookup: pull_mode(&config, args.no_pull),
            json: args.json,
            directory: args.directory,
        }),
        cli::Command::Build(args) => Command::Build(build_settings(&config, args, false)?),
        cli::Command::Publish(args) => Command::Build(build_settings(&config, args, true)?),
        cli::Command::Prune(args) => Command::Prune(PruneSettings {
            selection: Selection::new(&args.patterns, args.with_dependents)?,
            directory: args.directory,
            nightly: args.nightly,
            dry_run: args.dry_run,
            json: args.json,
        }),
        cli::Command::Update(args) => Command::Update(UpdateSettings {
            target: match args.name {
                Some(name) if args.outdated.is_none() => UpdateTarget::Name(name),
                _ => UpdateTarget::Outdated,
            },
            directory,
            reason: args.reason,
            version: args.version,
            dry_run: args.dry_run,
        }),
        cli::Command::Outdated(args) => Command::Outdated(OutdatedSettings {
            selection: selection(&args.select)?,
            json: args.json,
            directory: args.directory,
        }),
        cli::Command::Pipeline(args) => {
            if config.registry().is_empty() {
                return Err(SettingsError::NoRegistry("pipeline"));
            }
            Command::Pipeline(PipelineSettings {
                format: match args.format {
                    cli::PipelineFormat::Gitlab => pipeline::Format::Gitlab,
                    cli::PipelineFormat::Github => pipeline::Format::Github,
                },
                selection: selection(&args.select)?,
                all: args.all,
                jobs: pipeline::JobOptions {
                    config: config_arg.map(|p| p.to_string_lossy().into_owned()),
                    directory: args.directory.to_string_lossy().into_owned(),
                    image: args.job_image,
                    runner_tags: args.runner_tags,
                    install: args.install,
                    variables: args.variables.into_iter().collect(),
                },
                directory: args.directory,
            })
        }
        cli::Command::Completions(args) => Command::Completions(args.shell),
        cli::Command::Man => Command::Man,
    };
    Ok((config, command))
}

fn selection(args: &SelectArgs) -> Result<Selection, SettingsError> {
    Ok(Selection::new(&args.patterns, args.with_dependents)?.since(args.since.clone()))
}

/// docker-pkg never pulls when the config says `registry:` with no value.
fn pull_mode(config: &Config, no_pull: bool) -> PullMode {
    if no_pull || config.registry.is_none() { PullMode::NoPull } else { PullMode::Pull }
}

fn build_settings(config: &Config, args: BuildArgs, publish: bool) -> Result<BuildSettings, SettingsError> {
    if publish && config.registry().is_empty() {
        return Err(SettingsError::NoRegistry("publish"));
    }
    let pull = pull_mode(config, args.no_pull);
    Ok(BuildSettings {
        selection: if args.only.is_empty() {
            selection(&args.select)?
        } else {
            Selection::exact(&args.only)?.since(args.select.since.clone())
        },
        jobs: args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(2, usize::from), usize::from),
        use_cache: args.use_cache,
        pull,
        lookup: if publish { PullMode::Pull } else { pull },
        fail_fast: args.fail_fast,
        json: args.json,
        log_dir: args.log_dir.unwrap_or_else(|| config.log_dir.clone()),
        verify_timeout: Duration::from_secs(args.verify_timeout),
        // Once per run, so every image (and every `image_tag`) gets the same suffix.
        tag_suffix: (args.nightly || args.snapshot).then(|| timestamp::tag_suffix(SystemTime::now(), args.snapshot)),
        publish: publish.then(|| config.publish_tags.clone()),
        junit: args.junit,
        directory: args.directory,
    })
}
