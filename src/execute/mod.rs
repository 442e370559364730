//! Execution: the per-image steps (pull what a build needs, build, verify) run by the [`scheduler`] over the
//! DAG, each image's output in its own log file, progress to the [`Reporter`].

pub mod scheduler;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::definition::dockerfile::ReferenceKind;
use crate::engine::{self, BuildRequest, Engine};
use crate::graph::Graph;
use crate::plan::{Planned, PullMode, State};
use crate::registry::RegistryClient;
use crate::report::progress::{Finished, ImageLine, Reporter, Row, Step, Summary};
use crate::timestamp;
use crate::tree::{Rendered, Tree};
use scheduler::Outcome;
use verify::Verification;

/// The label carrying imgraph's content fingerprint of an image.
pub const FINGERPRINT_LABEL: &str = "dev.imgraph.fingerprint";

/// Lines of a failed step's output shown in the summary.
const TAIL_LINES: usize = 15;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub jobs: usize,
    pub use_cache: bool,
    pub pull: PullMode,
    pub fail_fast: bool,
    pub verify_timeout: Duration,
    pub log_dir: PathBuf,
}

/// Everything the image tasks share.
struct Run {
    tree: Arc<Tree>,
    rendered: Vec<Option<Rendered>>,
    parents: HashMap<usize, Vec<usize>>,
    plan: HashMap<usize, Planned>,
    engine: Engine,
    registry: RegistryClient,
    options: BuildOptions,
    reporter: Arc<Reporter>,
    revision: Option<String>,
    /// What identifies each finished image to its children's fingerprints.
    identities: Mutex<HashMap<usize, String>>,
    /// Pulls done (or failed) in this run, by reference: each is tried once, children wait for it.
    pulls: tokio::sync::Mutex<HashMap<String, Result<(), String>>>,
    results: Mutex<HashMap<usize, Record>>,
}

/// What an image's task recorded: how long its work took, its log, and why it ended as it did.
type Record = (Option<Duration>, Option<PathBuf>, String);

/// What a run ended with.
pub struct RunOutcome {
    pub rows: Vec<Row>,
    pub summary: Summary,
    pub interrupted: bool,
}

/// Builds and verifies what the plan says is missing, in dependency order. `plan` covers the selected images
/// in build order.
#[allow(clippy::too_many_arguments)]
pub async fn build(
    tree: Arc<Tree>,
    graph: &Graph,
    rendered: Vec<Option<Rendered>>,
    plan: Vec<Planned>,
    engine: Engine,
    registry: RegistryClient,
    options: BuildOptions,
    reporter: Arc<Reporter>,
    cancel: &CancellationToken,
) -> RunOutcome {
    let order: Vec<usize> = plan.iter().map(|p| p.image).collect();
    let parents = order.iter().map(|&i| (i, graph.parents(i))).collect();
    let revision = git_revision(&tree.root).await;
    let run = Arc::new(Run {
        tree,
        rendered,
        parents,
        plan: plan.into_iter().map(|p| (p.image, p)).collect(),
        engine,
        registry,
        options,
        reporter,
        revision,
        identities: Mutex::new(HashMap::new()),
        pulls: tokio::sync::Mutex::new(HashMap::new()),
        results: Mutex::new(HashMap::new()),
    });
    let worker = run.clone();
    let parents_of = |i: usize| run.parents.get(&i).cloned().unwrap_or_default();
    let outcomes = scheduler::run(&order, parents_of, run.options.jobs, run.options.fail_fast, cancel, move |i| {
        let run = worker.clone();
        Box::pin(async move { run.image(i).await })
    })
    .await;
    run.finish(&order, &outcomes, cancel.is_cancelled())
}

impl Run {
    fn lock_results(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Record>> {
        self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One image's work: nothing for what is already there, build + verify for what is not.
    async fn image(self: Arc<Self>, index: usize) -> Result<State, String> {
        let Some(planned) = self.plan.get(&index) else { return Err("not planned".into()) };
        let image = &self.tree.images[index];
        let identity = |local: &Option<engine::LocalImage>| {
            local.as_ref().map_or_else(
                || image.label.clone(),
                |l| l.labels.get(FINGERPRINT_LABEL).cloned().unwrap_or_else(|| l.id.clone()),
            )
        };
        match planned.state {
            State::ToBuild => {}
            State::Error => return Err(planned.reason.clone()),
            state => {
                self.identities
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(index, identity(&planned.local));
                self.lock_results()
                    .insert(index, (None, None, format!("already {}: {}", state.as_str(), planned.reason)));
                return Ok(state);
            }
        }
        let started = Instant::now();
        let log_path = self.options.log_dir.join(format!("{}.log", image.name));
        let result = self.build_and_verify(index, &log_path).await;
        let reason = match &result {
            Ok(how) => how.clone(),
            Err(why) => why.clone(),
        };
        self.lock_results().insert(index, (Some(started.elapsed()), Some(log_path.clone()), reason.clone()));
        let state = if result.is_ok() { State::Verified } else { State::Error };
        self.reporter.finished(&Finished {
            image: ImageLine { name: &image.name, tag: &image.tag, label: &image.label, state, reason: &reason },
            seconds: started.elapsed().as_secs_f64(),
            log: Some(&log_path),
        });
        result.map(|_| State::Verified)
    }

    async fn build_and_verify(&self, index: usize, log_path: &Path) -> Result<String, String> {
        let image = &self.tree.images[index];
        let file = File::create(log_path).map_err(|e| format!("cannot create log {}: {e}", log_path.display()))?;
        let mut log =
            LogSink { file: BufWriter::new(file), reporter: &self.reporter, name: &image.name, tail: Vec::new() };
        let rendered = match &self.rendered.get(index).and_then(Option::as_ref) {
            Some(rendered) => (*rendered).clone(),
            None => return Err("the template did not render (see `imgraph check`)".into()),
        };
        if self.tree.config.force_numeric_user && !rendered.has_numeric_user() {
            return Err("the last USER instruction is not numeric (force_numeric_user is set)".into());
        }
        log.line(&format!("# {} {}", image.label, timestamp::rfc3339(SystemTime::now())));

        if self.options.pull == PullMode::Pull {
            self.reporter.started(&image.name, Step::Pull);
            for reference in self.needed_pulls(index, &rendered) {
                self.pull_once(&reference, &mut log).await.map_err(|e| format!("cannot pull {reference}: {e}"))?;
            }
        }

        self.reporter.started(&image.name, Step::Build);
        let build_args = proxy_build_args(self.tree.config.http_proxy.as_deref());
        let fingerprint = self.fingerprint(index, &rendered.dockerfile, &build_args).await?;
        let labels = self.labels(index, &rendered, &fingerprint);
        let request = BuildRequest {
            context_dir: &image.dir,
            dockerfile: &rendered.dockerfile,
            tag: &image.label,
            build_args: &build_args,
            labels: &labels,
            no_cache: !self.options.use_cache,
            limits: &self.tree.config.container_limits,
        };
        let built = self.engine.build(&request, &mut |line| log.line(line)).await;
        if let Err(e) = built {
            return Err(log.failure(&format!("build failed: {e}")));
        }
        self.identities.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(index, fingerprint);

        self.reporter.started(&image.name, Step::Verify);
        log.line("# verify");
        let verification =
            verify::verify(&self.tree.config, &image.dir, &image.label, self.options.verify_timeout, &mut |line| {
                log.line(line)
            })
            .await;
        log.flush();
        match verification {
            Verification::Passed => Ok("built and verified".into()),
            Verification::Skipped { missing } => Ok(format!("built; verification skipped: no {}", missing.display())),
            Verification::Failed(why) => Err(log.failure(&why)),
        }
    }

    /// References to pull before building `index` (docker-pkg: its published parents, and the base images
    /// it uses, refreshed).
    fn needed_pulls(&self, index: usize, rendered: &Rendered) -> Vec<String> {
        let mut pulls: Vec<String> = self.parents[&index]
            .iter()
            .filter_map(|p| self.plan.get(p))
            .filter(|p| p.state == State::Published && p.local.is_none())
            .map(|p| self.tree.images[p.image].label.clone())
            .collect();
        pulls.extend(
            rendered
                .references
                .iter()
                .map(|r| &r.reference)
                .filter(|r| self.tree.config.base_images.contains(r))
                .cloned(),
        );
        pulls.sort();
        pulls.dedup();
        pulls
    }

    async fn pull_once(&self, reference: &str, log: &mut LogSink<'_>) -> Result<(), String> {
        let mut pulls = self.pulls.lock().await;
        if let Some(done) = pulls.get(reference) {
            return done.clone();
        }
        let host = reference.split('/').next().filter(|h| h.contains('.') || h.contains(':') || *h == "localhost");
        let credentials = match host {
            Some(host) => self.registry.credentials(host).await.map_err(|e| e.message)?,
            None => None,
        };
        log.line(&format!("# pull {reference}"));
        let result = self
            .engine
            .pull(reference, credentials.as_ref(), &mut |line| log.line(line))
            .await
            .map_err(|e| e.to_string());
        pulls.insert(reference.to_owned(), result.clone());
        result
    }

    /// A hash of everything that makes the image: the rendered Dockerfile and context, build args, and what
    /// its parents are.
    async fn fingerprint(
        &self,
        index: usize,
        dockerfile: &str,
        build_args: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let dir = self.tree.images[index].dir.clone();
        let dockerfile_owned = dockerfile.to_owned();
        let context = tokio::task::spawn_blocking(move || engine::context_digest(&dir, &dockerfile_owned))
            .await
            .map_err(|e| format!("context digest: {e}"))?
            .map_err(|e| e.to_string())?;
        let mut hash = Sha256::new();
        hash.update(context.as_bytes());
        for (key, value) in build_args {
            hash.update(format!("\0arg {key}={value}").as_bytes());
        }
        let identities = self.identities.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for parent in &self.parents[&index] {
            let identity = identities.get(parent).cloned().unwrap_or_else(|| self.tree.images[*parent].label.clone());
            hash.update(format!("\0parent {identity}").as_bytes());
        }
        Ok(format!("sha256:{}", hex::encode(hash.finalize())))
    }

    fn labels(&self, index: usize, rendered: &Rendered, fingerprint: &str) -> BTreeMap<String, String> {
        let image = &self.tree.images[index];
        let mut labels = BTreeMap::from([
            ("org.opencontainers.image.version".to_owned(), image.tag.clone()),
            ("org.opencontainers.image.created".to_owned(), timestamp::rfc3339(SystemTime::now())),
            (FINGERPRINT_LABEL.to_owned(), fingerprint.to_owned()),
        ]);
        if let Some(revision) = &self.revision {
            labels.insert("org.opencontainers.image.revision".into(), revision.clone());
        }
        // The final stage's base: the last FROM that names an image.
        if let Some(base) = rendered.references.iter().rev().find(|r| r.kind == ReferenceKind::From) {
            labels.insert("org.opencontainers.image.base.name".into(), base.reference.clone());
        }
        labels
    }

    fn finish(&self, order: &[usize], outcomes: &BTreeMap<usize, Outcome<State>>, interrupted: bool) -> RunOutcome {
        let mut summary = Summary { images: order.len(), ..Summary::default() };
        let results = self.lock_results();
        let rows = order
            .iter()
            .map(|&i| {
                let image = &self.tree.images[i];
                let (duration, log, reason) = results.get(&i).cloned().unwrap_or_default();
                let (state, reason) = match outcomes.get(&i) {
                    Some(Outcome::Done(state)) => (*state, reason),
                    Some(Outcome::Failed(why)) => (State::Error, why.clone()),
                    Some(Outcome::Skipped { because }) => {
                        (State::Skipped, format!("not attempted: {} failed", self.tree.images[*because].name))
                    }
                    Some(Outcome::Cancelled) | None => (State::Cancelled, "not finished".into()),
                };
                match state {
                    s if s.is_success() => summary.succeeded += 1,
                    State::Skipped => summary.skipped += 1,
                    State::Cancelled => summary.cancelled += 1,
                    _ => summary.failed += 1,
                }
                if matches!(state, State::Skipped) || (state == State::Error && duration.is_none()) {
                    self.reporter.finished(&Finished {
                        image: ImageLine {
                            name: &image.name,
                            tag: &image.tag,
                            label: &image.label,
                            state,
                            reason: &reason,
                        },
                        seconds: 0.0,
                        log: None,
                    });
                }
                Row { name: image.name.clone(), tag: image.tag.clone(), state, reason, duration, log }
            })
            .collect();
        RunOutcome { rows, summary, interrupted }
    }
}

/// An image's log file, mirrored to the reporter, keeping the last lines for failure messages.
struct LogSink<'a> {
    file: BufWriter<File>,
    reporter: &'a Reporter,
    name: &'a str,
    tail: Vec<String>,
}

impl LogSink<'_> {
    fn line(&mut self, line: &str) {
        // A log write failure must not fail the build; the log path is reported either way.
        let _ = writeln!(self.file, "{line}");
        self.reporter.output(self.name, line);
        if self.tail.len() == TAIL_LINES {
            self.tail.remove(0);
        }
        self.tail.push(line.to_owned());
    }

    fn flush(&mut self) {
        let _ = self.file.flush();
    }

    /// `why`, followed by the last lines of output.
    fn failure(&mut self, why: &str) -> String {
        self.flush();
        let tail: Vec<&str> = self.tail.iter().map(String::as_str).filter(|l| !l.starts_with("# ")).collect();
        if tail.is_empty() { why.to_owned() } else { format!("{why}\n--- last output:\n{}", tail.join("\n")) }
    }
}

/// docker-pkg's proxy build args: the four proxy variables when `http_proxy` is set.
fn proxy_build_args(proxy: Option<&str>) -> BTreeMap<String, String> {
    proxy
        .map(|proxy| {
            ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"].map(|k| (k.to_owned(), proxy.to_owned())).into()
        })
        .unwrap_or_default()
}

/// The tree's git commit, when it is in a git work tree.
async fn git_revision(root: &Path) -> Option<String> {
    let output =
        tokio::process::Command::new("git").arg("-C").arg(root).args(["rev-parse", "HEAD"]).output().await.ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}
