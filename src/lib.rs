//! imgraph: a declarative image-graph build orchestrator, a drop-in for docker-pkg.
//!
//! The modules read as the pipeline: [`settings`] → [`discover`] → [`definition`] → [`tree`] → [`graph`] →
//! [`report`], composed by the [`commands`]; [`exit`] owns the process exit codes.

pub mod cli;
pub mod commands;
pub mod definition;
pub mod diagnostic;
pub mod discover;
pub mod engine;
pub mod execute;
pub mod exit;
pub mod graph;
pub mod plan;
pub mod prune;
pub mod reference;
pub mod registry;
pub mod report;
pub mod settings;
pub mod timestamp;
pub mod tree;
pub mod update;
