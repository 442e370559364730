//! The integration tests: one binary, one module per topic.

mod conformance;
mod corpus;
mod errors;
mod graph;
mod harness;
