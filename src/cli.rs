//! The command line, as clap definitions only: parsing lives here, meaning lives in [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

    #[command(subcommand)]
    pub command: Command,
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
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The image to update: its exact name, or a glob over names if it has glob characters (`php8.1-*`)
    pub name: String,

    /// The tree to scan: the whole tree, so that every image depending on NAME is found
    pub directory: PathBuf,

    /// The change, written into each entry (several lines allowed; add your own `* ` bullet)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// NAME's new version [default: an automatic bump, as for every dependent]
    #[arg(short = 'v', long, value_name = "V")]
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
    #[arg(long = "select", value_name = "GLOB")]
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
    #[arg(long = "select", value_name = "GLOB")]
    pub patterns: Vec<String>,

    /// With --select: also every image that depends on a selected one
    #[arg(long, requires = "patterns")]
    pub with_dependents: bool,
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
