//! Diagnostic logs: `tracing` events at every decision point, shown on stderr by verbosity (`-v` info, `-vv`
//! debug, `-vvv` trace, `-q` nothing but errors), or as `RUST_LOG` says (tracing-subscriber's `EnvFilter`,
//! which overrides the flags). As text or JSON lines (`--log-format json`); never on stdout. On a terminal the
//! lines are written between redraws of the progress bars, so the two never garble each other.
//!
//! No secret is ever logged: events carry where a credential came from, never the credential, and URLs are
//! passed through [`redact_url`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

/// `-q`: nothing but errors and data.
static QUIET: AtomicBool = AtomicBool::new(false);

/// The progress display of the run, while there is one: log lines are written between its redraws.
static PROGRESS: OnceLock<Mutex<Option<MultiProgress>>> = OnceLock::new();

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// `-v` count.
    pub verbose: u8,
    pub quiet: bool,
}

impl Verbosity {
    /// The filter for imgraph's own events; other crates only say what is wrong unless `RUST_LOG` says more.
    fn directives(self) -> String {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "off",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        format!("warn,imgraph={level}")
    }
}

/// Sets up the logs of this process. `RUST_LOG`, when set, replaces the verbosity flags.
pub fn init(verbosity: Verbosity, format: LogFormat) {
    QUIET.store(verbosity.quiet, Ordering::Relaxed);
    let filter = match std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()) {
        Some(directives) => EnvFilter::try_new(&directives).unwrap_or_else(|e| {
            eprintln!("imgraph: warning: RUST_LOG `{directives}` is not a valid filter ({e}); using the flags");
            EnvFilter::new(verbosity.directives())
        }),
        None => EnvFilter::new(verbosity.directives()),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(StderrBetweenBars).with_target(true);
    // A second init (tests calling the library twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Whether `-q` asked for silence (messages for humans are then left out; errors and data are not).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Makes log lines go above `progress` while it is shown (`None` when it is gone).
pub fn set_progress(progress: Option<MultiProgress>) {
    *crate::lock(PROGRESS.get_or_init(|| Mutex::new(None))) = progress;
}

/// `scheme://user:password@host/…` with the password (and a token-like user) replaced: for proxy and realm
/// URLs, which may carry credentials.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// stderr, written between redraws of the progress display when there is one.
#[derive(Debug, Clone, Copy)]
struct StderrBetweenBars;

impl<'a> MakeWriter<'a> for StderrBetweenBars {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// One log event, buffered and written in one piece when dropped.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let write = || {
            // Nowhere to report a failure to write to stderr.
            let _ = io::stderr().lock().write_all(&self.0);
        };
        let progress = PROGRESS.get().map(crate::lock);
        match progress.as_ref().and_then(|p| p.as_ref()) {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_levels() {
        let directives = |verbose, quiet| Verbosity { verbose, quiet }.directives();
        assert_eq!(directives(0, false), "warn,imgraph=warn");
        assert_eq!(directives(1, false), "warn,imgraph=info");
        assert_eq!(directives(2, false), "warn,imgraph=debug");
        assert_eq!(directives(7, false), "warn,imgraph=trace");
        assert_eq!(directives(0, true), "warn,imgraph=off");
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(redact_url("http://user:hunter2@proxy:3128/"), "http://user:<redacted>@proxy:3128/");
        assert_eq!(redact_url("http://token@proxy"), "http://token:<redacted>@proxy");
        assert_eq!(redact_url("https://auth.example/token?scope=x"), "https://auth.example/token?scope=x");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
