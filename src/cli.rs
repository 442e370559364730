//! The command line, as clap definitions only: parsing lives here, meaning lives in [`crate::commands`].

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

/// Build, verify and publish a tree of interdependent container images, in dependency order.
///
/// Reads docker-pkg trees unchanged: every directory holding a `Dockerfile.template` and a Debian
/// `changelog` is an image.
#[derive(Debug, Parser)]
#[command(name = "imgraph", version, about, max_term_width = 100)]
pub struct Cli {
    /// Config file: `images.toml`, or a docker-pkg YAML file [default: ./images.toml, else ./config.yaml]
    #[arg(short = 'c', long = "config", visible_alias = "configfile", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Explain the decisions on stderr: -v what was asked and answered, -vv debug, -vvv trace (RUST_LOG
    /// overrides)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Say nothing but errors and data
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Format of the -v logs on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Format of the diagnostic logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event
    Text,
    /// One JSON object per event
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the dependency graph of a tree (no Docker needed)
    Graph(GraphArgs),
    /// Print an image's rendered Dockerfile, exactly (no Docker needed)
    Render(RenderArgs),
    /// Validate a tree: changelogs, names and tags, templates, dependencies, cycles (no Docker needed)
    Check(CheckArgs),
    /// Show each image's state (published, built, to-build, error) and why, without building anything
    Status(StatusArgs),
    /// Build and verify, in dependency order and in parallel, every selected image that is not published or
    /// built yet (never pushes)
    Build(BuildArgs),
    /// Build what is missing, verify what is not verified, then push, parents first: everything selected ends
    /// up verified and in the registry
    Publish(BuildArgs),
    /// Remove the local images of the tree's repositories that do not carry the current tag (docker-pkg's
    /// keep-rule), untagging what other repositories still tag; never forces
    Prune(PruneArgs),
    /// Add a changelog entry to an image and to every image that depends on it, with new versions (no Docker
    /// needed)
    Update(UpdateArgs),
    /// List the published images that no longer match the tree (content changed without a version bump) or
    /// their base (updated upstream), with what depends on them; exits 1 when there are any
    Outdated(OutdatedArgs),
    /// Print a CI pipeline (GitLab CI or GitHub Actions) with one job per image that needs publishing, each
    /// needing the jobs of the images it is built on
    Pipeline(PipelineArgs),
    /// Print the shell completion script (`source <(imgraph completions bash)`); it completes commands,
    /// options, and image names for --select and `update NAME`
    Completions(CompletionsArgs),
    /// Print the manual page (`imgraph man | man -l -`)
    Man,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// The tree to scan
    pub directory: PathBuf,

    #[command(flatten)]
    pub select: SelectArgs,

    /// One JSON object per outdated image and reason on stdout: name, tag, reason, detail, dependents
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The tree to scan (the jobs name it as given: run this where the jobs run, e.g. the repository's root)
    pub directory: PathBuf,

    /// The CI
    #[arg(long, value_enum)]
    pub format: PipelineFormat,

    #[command(flatten)]
    pub select: SelectArgs,

    /// A job for every selected image, published or not [default: only those the registry does not have]
    #[arg(long)]
    pub all: bool,

    /// The container image the jobs run in (it must have imgraph, or see --install, and reach a Docker daemon)
    #[arg(long, value_name = "IMAGE")]
    pub job_image: Option<String>,

    /// A runner tag (GitLab `tags`) or runner label (GitHub `runs-on`) of every job; repeatable
    #[arg(long = "runner-tag", value_name = "TAG")]
    pub runner_tags: Vec<String>,

    /// A shell command each job runs first, to install imgraph (e.g. `cargo install --locked imgraph`)
    #[arg(long, value_name = "COMMAND")]
    pub install: Option<String>,

    /// A variable every job gets; repeatable
    #[arg(long = "variable", value_name = "KEY=VALUE", value_parser = parse_variable)]
    pub variables: Vec<(String, String)>,
}

/// CI systems `pipeline` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PipelineFormat {
    /// A `.gitlab-ci.yml` (also usable as a dynamic child pipeline)
    Gitlab,
    /// A GitHub Actions workflow
    Github,
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE (a key of letters, digits and `_`)")),
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells with completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    /// The name clap_complete knows the shell by.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Elvish => "elvish",
            Shell::Powershell => "powershell",
        }
    }
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The image to update: its exact name, or a glob over names if it has glob characters (`php8.1-*`)
    #[arg(required_unless_present = "outdated", add = ArgValueCompleter::new(complete_image_names))]
    pub name: Option<String>,

    /// The tree to scan: the whole tree, so that every image depending on NAME is found
    #[arg(required_unless_present = "outdated")]
    pub directory: Option<PathBuf>,

    /// Instead of NAME: every image `imgraph outdated DIR` finds (and what depends on them), in one atomic run
    #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "directory", "version"])]
    pub outdated: Option<PathBuf>,

    /// The change, written into each entry (several lines allowed; add your own `* ` bullet) [default with
    /// --outdated: what changed, naming the base and both digests]
    #[arg(long, value_name = "TEXT", required_unless_present = "outdated")]
    pub reason: Option<String>,

    /// NAME's new version [default: an automatic bump, as for every dependent]
    #[arg(long, value_name = "V")]
    pub version: Option<String>,

    /// Print the entries that would be added, per changelog, and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The tree to scan
    pub directory: PathBuf,

    /// Only the images matching GLOB (name, name:tag or full label), not the images they depend on; repeatable
    #[arg(long = "select", value_name = "GLOB", add = ArgValueCompleter::new(complete_image_names))]
    pub patterns: Vec<String>,

    /// With --select: also every image that depends on a selected one
    #[arg(long, requires = "patterns")]
    pub with_dependents: bool,

    /// Keep the nightly build `<version>-ID` (e.g. 20261122) instead of `<version>`
    #[arg(long, value_name = "ID", value_parser = crate::prune::parse_nightly)]
    pub nightly: Option<String>,

    /// Say what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// One JSON object per removed, untagged or failed reference on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The tree to scan
    pub directory: PathBuf,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Look in the local daemon first, as docker-pkg's --no-pull does
    #[arg(long)]
    pub no_pull: bool,

    /// One JSON object per image and line on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The tree to scan
    pub directory: PathBuf,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Only the images matching GLOB, never what they depend on, which must be published already (as in a CI
    /// job whose parents other jobs publish); repeatable
    #[arg(long = "only", value_name = "GLOB", conflicts_with = "patterns", add = ArgValueCompleter::new(complete_image_names))]
    pub only: Vec<String>,

    /// Builds at once [default: the number of CPUs]
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Use the Docker build cache (docker-pkg builds with --no-cache unless told otherwise)
    #[arg(long)]
    pub use_cache: bool,

    /// Pull nothing: trust the local daemon first, do not refresh base images or pull published parents
    #[arg(long)]
    pub no_pull: bool,

    /// Stop launching new work at the first failure
    #[arg(long)]
    pub fail_fast: bool,

    /// Newline-delimited JSON events on stdout, and nothing else there
    #[arg(long)]
    pub json: bool,

    /// Directory for per-image logs [default: log_dir from the config, imgraph-logs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Seconds a verification may take before it is killed
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub verify_timeout: u64,

    /// Nightly build: append `-YYYYMMDD` (local date, computed once per run) to every tag
    #[arg(long, conflicts_with = "snapshot")]
    pub nightly: bool,

    /// Snapshot build: append `-YYYYMMDD-HHMMSS` (local time, computed once per run) to every tag
    #[arg(long)]
    pub snapshot: bool,

    /// Also write the results as JUnit XML to FILE (one test case per image), for CI to show
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The tree to scan
    pub directory: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,

    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// One line per image, in build order
    Text,
    /// `{"images": [...], "order": [...]}`
    Json,
    /// Graphviz
    Dot,
    /// Mermaid flowchart
    Mermaid,
}

/// Which images a command works on.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Only images matching GLOB (name, name:tag or full label), plus the images they depend on; repeatable
    #[arg(long = "select", value_name = "GLOB", add = ArgValueCompleter::new(complete_image_names))]
    pub patterns: Vec<String>,

    /// With --select: also every image that depends on a selected one
    #[arg(long, requires = "patterns")]
    pub with_dependents: bool,

    /// Only images whose files differ between git revision REF and the working tree (their directory, what
    /// their template includes, what their links lead to), plus every image that depends on them
    #[arg(long, value_name = "REF")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The tree to scan
    pub directory: PathBuf,
    /// The image: its name, name:tag, or full label
    pub name: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The tree to scan
    pub directory: PathBuf,

    /// Print the problems as a JSON array on stdout
    #[arg(long)]
    pub json: bool,
}

/// Options whose value is the next word, so that it is not taken for the tree's DIRECTORY.
const VALUED_OPTIONS: [&str; 12] = [
    "-c",
    "--config",
    "--configfile",
    "--select",
    "-j",
    "--jobs",
    "--log-dir",
    "--verify-timeout",
    "--format",
    "--nightly",
    "--reason",
    "--version",
];

/// Image names for shell completion: those of the tree named on the command line being completed (the first
/// word that is a directory), else of the current directory. Reads changelogs only.
fn complete_image_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let words: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(2).collect();
    let mut dir = None;
    let mut skip_next = false;
    for word in &words {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        skip_next = VALUED_OPTIONS.contains(&word.as_str());
        if !word.starts_with('-') && Path::new(word).is_dir() {
            dir = Some(PathBuf::from(word));
            break;
        }
    }
    let current = current.to_string_lossy();
    crate::tree::image_names(dir.as_deref().unwrap_or(Path::new(".")))
        .into_iter()
        .filter(|name| name.starts_with(current.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}
