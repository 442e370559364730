//! One image as written on disk: its changelog, control file and Dockerfile template; and its version as
//! Debian orders and `update` bumps it.

pub mod changelog;
pub mod control;
pub mod dockerfile;
pub mod template;
pub mod version;
