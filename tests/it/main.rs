//! The integration tests: one binary, one module per topic.

mod build;
mod conformance;
mod corpus;
mod diagnostics;
mod engine;
mod errors;
mod fixtures;
mod graph;
mod harness;
mod host;
mod isolation;
mod mutation;
mod outdated;
mod pipeline;
mod platforms;
mod prune;
mod publish;
mod registry;
mod since;
mod update;
