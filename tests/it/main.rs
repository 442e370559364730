//! The integration tests: one binary, one module per topic.

mod build;
mod conformance;
mod corpus;
mod engine;
mod errors;
mod graph;
mod harness;
mod mutation;
mod prune;
mod publish;
mod registry;
mod update;
