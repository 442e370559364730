//! imgraph: a declarative image-graph build orchestrator, a drop-in for docker-pkg.
//!
//! The modules read as the pipeline: [`cli`] and [`config`] → [`settings`] → [`discover`] → [`definition`] →
//! [`tree`] → [`graph`] ([`analysis`] takes a tree that far) → [`plan`] (asking the [`registry`] and the
//! [`engine`]) → [`execute`] → [`report`], composed by the [`commands`]; [`update`] and [`prune`] are the
//! changelog and cleanup commands' own steps. [`reference`] and [`definition::version`] are the homes of the
//! Docker reference and Debian version grammars, [`platform`] of OCI platforms, [`files`] of reading a tree's
//! files safely, and [`exit`] of the process exit codes.

pub(crate) mod analysis;
pub mod cli;
pub mod commands;
pub mod config;
pub mod definition;
pub(crate) mod diagnostic;
pub(crate) mod discover;
pub mod engine;
pub(crate) mod execute;
pub mod exit;
pub(crate) mod files;
pub(crate) mod fingerprint;
#[cfg(test)]
mod fuzz;
pub(crate) mod graph;
pub(crate) mod logging;
pub(crate) mod outdated;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod platform;
pub(crate) mod prune;
pub mod reference;
pub mod registry;
pub(crate) mod report;
pub(crate) mod settings;
pub(crate) mod since;
pub(crate) mod timestamp;
pub mod tree;
pub(crate) mod update;

/// Locks `mutex`, taking the data even if a panicking thread poisoned it: every value shared this way stays
/// consistent between statements, so a panic elsewhere must not take the run down with it.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
