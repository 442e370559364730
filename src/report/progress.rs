//! The progress and results of a run: a progress display on a terminal, timestamped lines elsewhere (CI),
//! or newline-delimited JSON events on stdout with `--json`; then a summary table.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::plan::State;
use crate::timestamp;

use super::ImageLine;

/// How the run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A live display on stderr (stderr is a terminal).
    Terminal,
    /// One timestamped line per event on stderr.
    Plain,
    /// JSON events on stdout, one per line, and nothing else there.
    Json,
}

/// A step of an image's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Pull,
    Build,
    Verify,
    Push,
}

impl Step {
    fn verb(self) -> &'static str {
        match self {
            Step::Pull => "pulling parents",
            Step::Build => "building",
            Step::Verify => "verifying",
            Step::Push => "pushing",
        }
    }
}

/// The JSON events (`--json`).
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The state of an image before the run (also what `status --json` prints, without the `event` key).
    Planned(&'a ImageLine<'a>),
    Started {
        name: &'a str,
        /// The platform the step is for, for images with declared platforms.
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<&'a str>,
        step: Step,
        time: String,
    },
    Finished(&'a Finished<'a>),
    Summary(&'a Summary),
}

/// How an image ended.
#[derive(Debug, Serialize)]
pub struct Finished<'a> {
    #[serde(flatten)]
    pub image: ImageLine<'a>,
    pub seconds: f64,
    pub log: Option<&'a Path>,
    /// The manifest digest of an image pushed by this run (for several platforms, the index's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a str>,
    /// For several platforms: each one's manifest digest.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub platforms: &'a [PlatformDigest],
}

/// A platform's manifest in a pushed index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformDigest {
    pub platform: String,
    pub digest: String,
}

/// Counts at the end of a run.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub images: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    pub exit_code: u8,
}

/// A row of the final table.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub tag: String,
    pub state: State,
    pub reason: String,
    pub duration: Option<Duration>,
    pub log: Option<PathBuf>,
    /// For an image with declared platforms: how each platform's build and verification ended (`name` is
    /// then the platform).
    pub platforms: Vec<Row>,
}

/// Reports a run; shared by every task (all methods take `&self`).
pub struct Reporter {
    style: Style,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Serialises JSON lines and plain lines so concurrent tasks never interleave within a line.
    out: Mutex<()>,
}

impl Reporter {
    /// `total` is the number of images that have work to do (the overall bar's length).
    pub fn new(style: Style, total: usize) -> Self {
        let (multi, overall) = if style == Style::Terminal {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} images {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            crate::logging::set_progress(Some(multi.clone()));
            (Some(multi), Some(overall))
        } else {
            (None, None)
        };
        Self { style, multi, overall, bars: Mutex::new(HashMap::new()), out: Mutex::new(()) }
    }

    /// A line for humans: above the live display, or timestamped on stderr; nothing in JSON mode.
    pub fn note(&self, message: &str) {
        if crate::logging::quiet() {
            return;
        }
        match (&self.multi, self.style) {
            (Some(multi), _) => multi.suspend(|| eprintln!("{message}")),
            (None, Style::Plain) => self.plain(message),
            (None, _) => {}
        }
    }

    fn plain(&self, message: &str) {
        let _guard = crate::lock(&self.out);
        eprintln!("{} {message}", timestamp::clock(SystemTime::now()));
    }

    fn json(&self, event: &Event<'_>) {
        let _guard = crate::lock(&self.out);
        if let Ok(line) = serde_json::to_string(event) {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout must not stop the build; the exit code still tells the outcome.
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }

    pub fn planned(&self, line: &ImageLine<'_>) {
        match self.style {
            Style::Json => self.json(&Event::Planned(line)),
            _ => self.note(&format!("{}:{} {}: {}", line.name, line.tag, line.state.as_str(), line.reason)),
        }
    }

    /// `step` of image `name` started, for `platform` when given.
    pub fn started(&self, name: &str, platform: Option<&str>, step: Step) {
        let key = Self::key(name, platform);
        match self.style {
            Style::Json => {
                let time = timestamp::rfc3339(SystemTime::now());
                self.json(&Event::Started { name, platform, step, time });
            }
            Style::Plain if crate::logging::quiet() => {}
            Style::Plain => self.plain(&format!("{key}: {}", step.verb())),
            Style::Terminal => {
                let mut bars = crate::lock(&self.bars);
                let bar = bars.entry(key.clone()).or_insert_with(|| {
                    let bar =
                        self.multi.as_ref().map_or_else(ProgressBar::hidden, |m| m.add(ProgressBar::new_spinner()));
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix}: {msg} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(key.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(step.verb());
            }
        }
    }

    /// What names an image's work (for one platform) in the live display and in plain lines.
    pub fn key(name: &str, platform: Option<&str>) -> String {
        match platform {
            Some(platform) => format!("{name} {platform}"),
            None => name.to_owned(),
        }
    }

    /// The last output line of a running step of `key` (see [`Reporter::key`]), beside its spinner on a terminal.
    pub fn output(&self, key: &str, line: &str) {
        if self.style == Style::Terminal
            && let Some(bar) = crate::lock(&self.bars).get(key)
        {
            bar.set_message(line.chars().take(80).collect::<String>());
        }
    }

    /// One platform's work on an image ended (the image's own end is [`Reporter::finished`]).
    pub fn platform_done(&self, name: &str, platform: &str) {
        self.clear_bar(&Self::key(name, platform.into()));
    }

    fn clear_bar(&self, key: &str) {
        if let Some(bar) = crate::lock(&self.bars).remove(key) {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
    }

    pub fn finished(&self, finished: &Finished<'_>) {
        let image = &finished.image;
        self.clear_bar(image.name);
        if let Some(overall) = &self.overall {
            overall.inc(1);
        }
        match self.style {
            Style::Json => self.json(&Event::Finished(finished)),
            _ => self.note(&format!("{}:{} {}: {}", image.name, image.tag, image.state.as_str(), image.reason)),
        }
    }

    /// Ends the live display and prints the summary: a table on stdout, or a JSON event.
    pub fn summary(&self, rows: &[Row], summary: &Summary) {
        if let Some(overall) = &self.overall {
            overall.finish_and_clear();
        }
        crate::logging::set_progress(None);
        if self.style == Style::Json {
            self.json(&Event::Summary(summary));
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(table(rows).as_bytes());
        let _ = writeln!(
            stdout,
            "{} images: {} ok, {} failed, {} skipped, {} cancelled",
            summary.images, summary.succeeded, summary.failed, summary.skipped, summary.cancelled
        );
    }
}

/// The summary table: image, tag, final state, duration, log, and why when it did not succeed.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.name.clone(),
                row.tag.clone(),
                row.state.as_str().to_owned(),
                row.duration.map_or_else(|| "-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64())),
                row.log.as_ref().map_or_else(|| "-".to_owned(), |p| p.display().to_string()),
            ]
        })
        .collect();
    let headers = ["IMAGE", "TAG", "STATE", "TIME", "LOG"];
    let widths: Vec<usize> =
        (0..5).map(|c| super::column_width(cells.iter().map(|r| r[c].chars().count())).max(headers[c].len())).collect();
    let line = |values: [&str; 5]| {
        let mut text = String::new();
        for (c, value) in values.iter().enumerate() {
            if c == 4 {
                text.push_str(value);
            } else {
                text.push_str(&format!("{value:<width$}  ", width = widths[c]));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers);
    for (row, cells) in rows.iter().zip(&cells) {
        out.push_str(&line([&cells[0], &cells[1], &cells[2], &cells[3], &cells[4]]));
        if !row.state.is_success() && !row.reason.is_empty() {
            for reason_line in row.reason.lines() {
                out.push_str(&format!("    {reason_line}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_explains_failures() {
        let rows = vec![
            Row {
                name: "base".into(),
                tag: "1.0".into(),
                state: State::Verified,
                reason: "built and verified".into(),
                duration: Some(Duration::from_millis(2100)),
                log: Some("logs/base.log".into()),
                platforms: Vec::new(),
            },
            Row {
                name: "child-image".into(),
                tag: "2".into(),
                state: State::Skipped,
                reason: "base failed".into(),
                duration: None,
                log: None,
                platforms: Vec::new(),
            },
        ];
        assert_eq!(
            table(&rows),
            "IMAGE        TAG  STATE     TIME  LOG\n\
             base         1.0  verified  2.1s  logs/base.log\n\
             child-image  2    skipped   -     -\n    base failed\n"
        );
    }
}
