//! imgraph: a declarative image-graph build orchestrator, a drop-in for docker-pkg.
//!
//! The modules read as the pipeline: [`settings`] → [`discover`] → [`definition`] → [`tree`] → [`graph`] → the
//! commands in [`commands`], with [`exit`] owning the process exit codes.

pub mod definition;
pub mod diagnostic;
pub mod reference;
pub mod settings;
