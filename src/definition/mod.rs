//! One image as written on disk: its changelog, control file and Dockerfile template.

pub mod changelog;
pub mod control;
pub mod dockerfile;
pub mod template;
