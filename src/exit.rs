//! Process exit codes, defined once (the README's table mirrors this file).

/// Everything asked for was done; `check` found no error.
pub const SUCCESS: u8 = 0;
/// `check` found at least one error; a selected image ended in error, skipped or cancelled (`build`,
/// `status`) or not published (`publish`); the graph printed is incomplete (`graph`); `outdated` listed an image;
/// a removal failed (`prune`); a changelog could not be written or the tree locked (`update`); an output file
/// could not be written.
pub const FAILURE: u8 = 1;
/// The command line is wrong (clap's own code).
pub const USAGE: u8 = 2;
/// The config or the command's input cannot be used: unreadable or invalid config, a directory that does not
/// exist, an invalid pattern or `--since` revision, an image name that is not in the tree, a template error
/// (`render`), `publish` with no registry, a registry `outdated` cannot ask, or an `update` that cannot update
/// every image it should (it then writes nothing). A flaw in one image's definition is that image's error, not
/// this.
pub const INPUT: u8 = 3;
/// The Docker daemon cannot be reached.
pub const DOCKER_UNAVAILABLE: u8 = 4;
/// Interrupted (Ctrl-C): running work was stopped.
pub const INTERRUPTED: u8 = 130;
