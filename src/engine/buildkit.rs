//! BuildKit builds through the Engine API: the options that ask the daemon for BuildKit (with a session that
//! bollard serves while the build runs), and BuildKit's progress (the `moby.buildkit.trace` status messages) turned
//! into the lines `docker build --progress=plain` prints, so that image logs and failure tails read as they do with
//! the classic builder. The rest of a build (context, stream, result, errors) is [`super::Engine::build`]'s, shared
//! with the classic builder.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::moby::buildkit::v1::StatusResponse;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};

use super::ApiRequirement;

/// BuildKit needs `POST /session`, which left experimental in API 1.39; the Docker CLI asks the same of a daemon
/// before it builds with BuildKit.
pub(super) const API: ApiRequirement = ApiRequirement { feature: "BuildKit builds", min: (1, 39), docker: "18.09" };

/// How many output lines of a failed step are repeated at the end, as `--progress=plain` does.
const FAILED_STEP_LINES: usize = 10;

/// `base` (what every build sets) for BuildKit: the labels go through the API (BuildKit sets them without a step of
/// their own), and the build gets a session of its own, which bollard serves while the build runs.
pub(super) fn options(base: BuildImageOptionsBuilder, labels: &HashMap<String, String>) -> BuildImageOptionsBuilder {
    base.version(BuilderVersion::BuilderBuildKit).session(&session_id()).labels(labels)
}

/// An id no other session on the daemon has, whichever imgraph process or build it comes from: the daemon finds a
/// build's session by it.
fn session_id() -> String {
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("imgraph-{}-{nanos}-{}", std::process::id(), BUILDS.fetch_add(1, Ordering::Relaxed))
}

/// Seconds since the epoch of an `Option` of a protobuf timestamp (a type bollard does not re-export).
macro_rules! seconds {
    ($timestamp:expr) => {
        $timestamp.as_ref().map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
    };
}

/// BuildKit's progress, as `docker build --progress=plain` prints it: `#N name` when step N starts (again when
/// another step printed in between), its finished transfers (`#N transferring context: 2B done`) and its output
/// (`#N 0.123 text`, seconds since the step started), then `#N DONE 0.3s`, `#N CACHED`, `#N CANCELED` or
/// `#N ERROR: …`. At the end, the last output lines of each failed step again (if it wrote any), so that they end
/// the log.
#[derive(Default)]
pub(super) struct Progress {
    /// By vertex digest.
    steps: HashMap<String, Step>,
    /// The step printed last, whose header is not repeated.
    current: Option<String>,
    /// The digests of the steps that failed, in order.
    failed: Vec<String>,
}

#[derive(Default)]
struct Step {
    /// N in `#N`: steps are numbered in the order BuildKit first names them.
    number: usize,
    name: String,
    /// Seconds since the epoch.
    started: Option<f64>,
    /// Whether the header was printed once the step started.
    announced: bool,
    done: bool,
    /// Lines of this update, not printed yet.
    pending: Vec<String>,
    /// The step's last line (DONE, ERROR, …), set by the update that finishes it.
    ending: Option<String>,
    /// Output not yet ended by a newline, and when it was written.
    partial: Vec<u8>,
    partial_at: Option<f64>,
    /// The last output lines, for the summary of a failed step.
    recent: VecDeque<String>,
}

impl Progress {
    /// Prints what `status` changes. Lines are grouped by step, in the order `status` first names the steps.
    pub(super) fn update(&mut self, status: StatusResponse, log: &mut dyn FnMut(&str)) {
        let mut order = Vec::new();
        for vertex in status.vertexes {
            let step = touch(&mut self.steps, &mut order, &vertex.digest);
            step.name = vertex.name;
            step.started = step.started.or(seconds!(vertex.started));
            // BuildKit sends a vertex again when anything about it changes; it ends once.
            let Some(completed) = seconds!(vertex.completed).filter(|_| !step.done) else { continue };
            step.done = true;
            let ending = if vertex.error.ends_with("context canceled") {
                "CANCELED".to_owned()
            } else if !vertex.error.is_empty() {
                self.failed.push(vertex.digest.clone());
                format!("ERROR: {}", vertex.error)
            } else if vertex.cached {
                "CACHED".to_owned()
            } else {
                step.started.map_or_else(|| "DONE".to_owned(), |started| format!("DONE {:.1}s", completed - started))
            };
            step.ending = Some(format!("#{} {ending}", step.number));
        }
        // Only finished transfers: their progress would fill a log with counters.
        for transfer in status.statuses {
            let Some(completed) = seconds!(transfer.completed) else { continue };
            let step = touch(&mut self.steps, &mut order, &transfer.vertex);
            let size = match (transfer.current, transfer.total) {
                (current, total) if total != 0 => format!(" {} / {}", size(current), size(total)),
                (0, _) => String::new(),
                (current, _) => format!(" {}", size(current)),
            };
            let took = seconds!(transfer.started).map(|started| completed - started).filter(|s| *s > 0.01);
            let took = took.map_or_else(String::new, |s| format!(" {s:.1}s"));
            step.pending.push(format!("#{} {}{size}{took} done", step.number, transfer.id));
        }
        for output in status.logs {
            let step = touch(&mut self.steps, &mut order, &output.vertex);
            step.output(&output.msg, seconds!(output.timestamp));
        }
        for warning in status.warnings {
            let step = touch(&mut self.steps, &mut order, &warning.vertex);
            step.pending.push(format!("#{} WARN: {}", step.number, String::from_utf8_lossy(&warning.short)));
        }
        for digest in order {
            self.print(&digest, log);
        }
    }

    /// Prints what is left: output cut off mid-line, then the last output of each failed step.
    pub(super) fn finish(&mut self, log: &mut dyn FnMut(&str)) {
        let mut cut: Vec<(usize, String)> = (self.steps.iter())
            .filter(|(_, step)| !step.partial.is_empty())
            .map(|(digest, step)| (step.number, digest.clone()))
            .collect();
        cut.sort_unstable();
        for (_, digest) in cut {
            if let Some(step) = self.steps.get_mut(&digest) {
                step.end_line(None);
            }
            self.print(&digest, log);
        }
        let failed = self.failed.iter().filter_map(|digest| self.steps.get(digest));
        for step in failed.filter(|step| !step.recent.is_empty()) {
            log("------");
            log(&format!(" > {}:", step.name));
            for line in &step.recent {
                log(line);
            }
            log("------");
        }
    }

    /// Prints the pending lines of a step, under its header unless it was the last step printed.
    fn print(&mut self, digest: &str, log: &mut dyn FnMut(&str)) {
        let Some(step) = self.steps.get_mut(digest) else { return };
        let announce = step.started.is_some() && !step.announced;
        if step.ending.is_some() && !step.partial.is_empty() {
            step.end_line(None);
        }
        if step.pending.is_empty() && step.ending.is_none() && !announce {
            return;
        }
        if self.current.as_deref() != Some(digest) {
            log(&format!("#{} {}", step.number, step.name));
        }
        step.announced |= step.started.is_some();
        for line in step.pending.drain(..) {
            log(&line);
        }
        match step.ending.take() {
            Some(ending) => {
                log(&ending);
                self.current = None;
            }
            None => self.current = Some(digest.to_owned()),
        }
    }
}

/// The step of `digest`, numbered when first named; `order` gets each digest once.
fn touch<'a>(steps: &'a mut HashMap<String, Step>, order: &mut Vec<String>, digest: &str) -> &'a mut Step {
    if !order.iter().any(|d| d == digest) {
        order.push(digest.to_owned());
    }
    let number = steps.len() + 1;
    steps.entry(digest.to_owned()).or_insert_with(|| Step { number, ..Step::default() })
}

impl Step {
    /// Output bytes written at `at`: each complete line becomes a pending line.
    fn output(&mut self, bytes: &[u8], at: Option<f64>) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            self.end_line(at);
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            if self.partial.is_empty() {
                self.partial_at = at;
            }
            self.partial.extend_from_slice(rest);
        }
    }

    /// Ends the partial line (written at `at` unless it began earlier): `#N 0.123 text`, with the precision
    /// `--progress=plain` gives the time.
    fn end_line(&mut self, at: Option<f64>) {
        let at = self.partial_at.take().or(at);
        let text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        let seconds = match (at, self.started) {
            (Some(at), Some(started)) => (at - started).max(0.0),
            _ => 0.0,
        };
        let precision = if seconds < 10.0 {
            3
        } else if seconds < 100.0 {
            2
        } else {
            1
        };
        let line = format!("#{} {seconds:.precision$} {}", self.number, text.trim_end_matches('\r'));
        if self.recent.len() == FAILED_STEP_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.clone());
        self.pending.push(line);
    }
}

/// A byte count as BuildKit's progress shows it: `37B`, `2.05kB`, `30.01MB`.
fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes.abs() < 1000 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value.abs() < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    format!("{value:.2}{unit}")
}

#[cfg(test)]
mod tests {
    use bollard::moby::buildkit::v1::{Vertex, VertexLog, VertexStatus};

    use super::*;

    /// Sets an `Option` of a protobuf timestamp to `ms` milliseconds after the epoch.
    macro_rules! at {
        ($slot:expr, $ms:expr) => {{
            $slot = Some(Default::default());
            if let Some(t) = $slot.as_mut() {
                t.seconds = $ms / 1000;
                t.nanos = (($ms % 1000) * 1_000_000) as i32;
            }
        }};
    }

    fn vertex(digest: &str, name: &str, started: Option<i64>, completed: Option<i64>) -> Vertex {
        let mut vertex = Vertex { digest: digest.into(), name: name.into(), ..Vertex::default() };
        if let Some(ms) = started {
            at!(vertex.started, ms);
        }
        if let Some(ms) = completed {
            at!(vertex.completed, ms);
        }
        vertex
    }

    fn output(digest: &str, ms: i64, text: &str) -> VertexLog {
        let mut log =
            VertexLog { vertex: digest.into(), stream: 1, msg: text.as_bytes().to_vec(), ..VertexLog::default() };
        at!(log.timestamp, ms);
        log
    }

    /// Feeds `updates` and then ends the build, returning what was printed.
    fn render(updates: Vec<StatusResponse>) -> Vec<String> {
        let mut progress = Progress::default();
        let mut lines = Vec::new();
        for status in updates {
            progress.update(status, &mut |line| lines.push(line.to_owned()));
        }
        progress.finish(&mut |line| lines.push(line.to_owned()));
        lines
    }

    #[test]
    fn steps_print_as_plain_progress_does() {
        let mut transfer = VertexStatus {
            id: "transferring dockerfile:".into(),
            vertex: "a".into(),
            current: 37,
            ..VertexStatus::default()
        };
        at!(transfer.started, 1_000);
        at!(transfer.completed, 1_200);
        let mut cached = vertex("b", "[1/2] FROM base", Some(1_300), Some(1_300));
        cached.cached = true;
        let mut failed = vertex("c", "[2/2] RUN echo hello && exit 7", Some(2_000), Some(2_500));
        failed.error = "executor failed running [/bin/sh -c echo hello && exit 7]: exit code: 7".into();
        let updates = vec![
            StatusResponse {
                vertexes: vec![vertex("a", "[internal] load build definition from Dockerfile", Some(1_000), None)],
                ..StatusResponse::default()
            },
            StatusResponse {
                vertexes: vec![vertex(
                    "a",
                    "[internal] load build definition from Dockerfile",
                    Some(1_000),
                    Some(1_250),
                )],
                statuses: vec![transfer],
                ..StatusResponse::default()
            },
            StatusResponse { vertexes: vec![cached], ..StatusResponse::default() },
            StatusResponse {
                vertexes: vec![vertex("c", "[2/2] RUN echo hello && exit 7", Some(2_000), None)],
                logs: vec![output("c", 2_100, "hel")],
                ..StatusResponse::default()
            },
            StatusResponse { logs: vec![output("c", 2_150, "lo\nsecond line\r\nthird")], ..StatusResponse::default() },
            StatusResponse { vertexes: vec![failed], ..StatusResponse::default() },
        ];
        assert_eq!(
            render(updates),
            [
                "#1 [internal] load build definition from Dockerfile",
                "#1 transferring dockerfile: 37B 0.2s done",
                "#1 DONE 0.2s",
                "#2 [1/2] FROM base",
                "#2 CACHED",
                "#3 [2/2] RUN echo hello && exit 7",
                "#3 0.100 hello",
                "#3 0.150 second line",
                "#3 0.150 third",
                "#3 ERROR: executor failed running [/bin/sh -c echo hello && exit 7]: exit code: 7",
                "------",
                " > [2/2] RUN echo hello && exit 7:",
                "#3 0.100 hello",
                "#3 0.150 second line",
                "#3 0.150 third",
                "------",
            ]
        );
    }

    #[test]
    fn interleaved_steps_repeat_their_headers_and_cut_lines_are_kept() {
        let updates = vec![
            StatusResponse {
                vertexes: vec![
                    vertex("a", "[a 1/1] RUN one", Some(0), None),
                    vertex("b", "[b 1/1] RUN two", Some(0), None),
                ],
                logs: vec![
                    output("a", 50, "from a\n"),
                    output("b", 12_500, "from b\n"),
                    output("a", 100, "more a, no newline"),
                ],
                ..StatusResponse::default()
            },
            StatusResponse {
                vertexes: vec![{
                    let mut v = vertex("b", "[b 1/1] RUN two", Some(0), Some(200));
                    v.error = "rpc error: code = Canceled desc = context canceled".into();
                    v
                }],
                ..StatusResponse::default()
            },
            // A failed step without output is not summed up at the end.
            StatusResponse {
                vertexes: vec![{
                    let mut v = vertex("c", "resolve image config for x", Some(300), Some(400));
                    v.error = "failed to do request".into();
                    v
                }],
                ..StatusResponse::default()
            },
        ];
        assert_eq!(
            render(updates),
            [
                "#1 [a 1/1] RUN one",
                "#1 0.050 from a",
                "#2 [b 1/1] RUN two",
                "#2 12.50 from b",
                "#2 CANCELED",
                "#3 resolve image config for x",
                "#3 ERROR: failed to do request",
                "#1 [a 1/1] RUN one",
                "#1 0.100 more a, no newline",
            ]
        );
    }

    #[test]
    fn sizes_read_as_buildkit_prints_them() {
        assert_eq!(size(37), "37B");
        assert_eq!(size(2_048), "2.05kB");
        assert_eq!(size(30_010_000), "30.01MB");
        assert_eq!(size(i64::MAX), "9223.37PB");
    }
}
