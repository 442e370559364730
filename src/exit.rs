//! Process exit codes, defined once (the README's table mirrors this file).

/// Everything asked for was done; `check` found no error.
pub const SUCCESS: u8 = 0;
/// `check` found at least one error; a selected image ended in error, skipped or cancelled (`build`,
/// `status`) or not published (`publish`); a removal failed (`prune`); a changelog could not be written
/// (`update`).
pub const FAILURE: u8 = 1;
/// The command line is wrong (clap's own code).
pub const USAGE: u8 = 2;
/// The config or the tree cannot be used: unreadable or invalid config, a directory that does not exist, a
/// malformed changelog or control file, a template error, duplicate names, an unknown dependency, a cycle, an
/// image name that is not in the tree, `publish` with no registry, or an `update` that cannot update every
/// image it should (it then writes nothing).
pub const INPUT: u8 = 3;
/// The Docker daemon cannot be reached.
pub const DOCKER_UNAVAILABLE: u8 = 4;
/// Interrupted (Ctrl-C): running work was stopped.
pub const INTERRUPTED: u8 = 130;
