//! A small fluent harness: write an image tree into a temp dir, run `imgraph` on it, look at the result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::fixtures::shared_registries;

/// The binary under test.
pub const IMGRAPH: &str = env!("CARGO_BIN_EXE_imgraph");

/// A changelog with one valid entry.
pub fn changelog(name: &str, version: &str) -> String {
    format!(
        "{name} ({version}) wikimedia; urgency=medium\n\n  * Initial release.\n\n -- Test Author <test@example.org>  Mon, 23 Nov 2026 10:00:00 +0000\n"
    )
}

/// An image tree in a temp dir.
pub struct TestTree {
    dir: tempfile::TempDir,
}

impl TestTree {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The tree root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// An image in `dir` named `name` at `version`, built from `template`.
    pub fn image(self, dir: &str, name: &str, version: &str, template: &str) -> Self {
        self.file(&format!("{dir}/changelog"), changelog(name, version))
            .file(&format!("{dir}/Dockerfile.template"), template)
    }

    /// Any file, parent directories created.
    pub fn file(self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("create dirs");
        std::fs::write(&path, contents).expect("write file");
        self
    }

    /// Makes `path` executable.
    pub fn chmod_x(self, path: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path().join(path), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }

    /// A symbolic link at `path` pointing to `target`.
    pub fn symlink(self, target: &str, path: &str) -> Self {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().expect("link has a parent")).expect("create dirs");
        std::os::unix::fs::symlink(target, &path).expect("symlink");
        self
    }

    /// Runs `imgraph ARGS` in the tree root; `{tree}` in an argument is replaced by the root path.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// [`TestTree::run`] with extra environment variables.
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let root = self.path().to_string_lossy().into_owned();
        let args: Vec<String> = args.iter().map(|a| a.replace("{tree}", &root)).collect();
        run_in_with(self.path(), &args, &[self.path()], vars)
    }
}

/// Runs `imgraph` in `cwd` with an isolated environment (no user config); `redact` paths become `[TREE]`.
pub fn run_in(cwd: &Path, args: &[String], redact: &[&Path]) -> Run {
    run_in_with(cwd, args, redact, &[])
}

fn run_in_with(cwd: &Path, args: &[String], redact: &[&Path], vars: &[(&str, &str)]) -> Run {
    let output = Command::new(IMGRAPH)
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"))
        .env_remove("HOME")
        .envs(vars.iter().copied())
        .output()
        .expect("run imgraph");
    Run { output, redact: redact.iter().map(|p| p.to_path_buf()).collect() }
}

/// The result of one run.
pub struct Run {
    pub output: Output,
    redact: Vec<PathBuf>,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Self {
        self.expect_code(0)
    }

    /// Exit code, stdout and stderr in one string, with temp paths redacted: what snapshots record.
    pub fn transcript(&self) -> String {
        let mut text = format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code(), self.stdout(), self.stderr());
        for path in &self.redact {
            text = text.replace(&path.to_string_lossy().into_owned(), "[TREE]");
        }
        text
    }
}

/// `../shared` beside the project: required in CI, optional elsewhere.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing: the conformance data is required when CI=true",
        dir.display()
    );
    eprintln!("note: {} is missing; skipping a test that needs it", dir.display());
    None
}

/// The real Docker daemons started by `scripts/with-test-env.sh`, and the registries shared by the tests
/// (started on first use by [`shared_registries`], once per test binary).
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// `unix://…` of the private daemon (also exported as `DOCKER_HOST`).
    pub docker_host: String,
    /// `unix://…` of a second private daemon, standing in for a remote builder (`IMGRAPH_TEST_DOCKER_HOST_2`).
    pub docker_host_2: String,
    /// `ssh://root@127.0.0.1:PORT`: the second daemon through a private sshd (`IMGRAPH_TEST_SSH_HOST`).
    pub ssh_host: String,
    /// `PATH` with the `ssh` client for `ssh_host` first (its own keys and known hosts).
    pub ssh_path: String,
    /// A plain-HTTP registry on loopback, `127.0.0.1:PORT`.
    pub registry: String,
    /// A registry with htpasswd auth, `127.0.0.1:PORT`, and its credentials.
    pub auth_registry: String,
    pub auth_user: String,
    pub auth_password: String,
    /// A busybox base image for the host's platform, already in both daemons (`imgraph-test/busybox:1`).
    pub base_image: String,
    /// The same for linux/arm64, run under QEMU emulation (`imgraph-test/busybox-arm64:1`), in both daemons.
    pub arm64_base_image: String,
}

/// The real-Docker test environment. The tests that need it are `#[ignore]`d, so that a plain `cargo test`
/// says how many did not run; `scripts/test.sh` starts the environment and runs them with `--include-ignored`.
/// Run without it, they fail, saying why.
pub fn test_env() -> TestEnv {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    assert!(
        var("IMGRAPH_TEST_ENV").is_some(),
        "this test needs the real Docker environment of scripts/with-test-env.sh: run `scripts/test.sh`"
    );
    let required = |name: &str| var(name).unwrap_or_else(|| panic!("{name} is not set by with-test-env.sh"));
    let (docker_host, docker_host_2) = (required("DOCKER_HOST"), required("IMGRAPH_TEST_DOCKER_HOST_2"));
    let (base_image, arm64_base_image) =
        (required("IMGRAPH_TEST_BASE_IMAGE"), required("IMGRAPH_TEST_ARM64_BASE_IMAGE"));
    let ssh_host = required("IMGRAPH_TEST_SSH_HOST");
    let ssh_path = format!("{}:{}", required("IMGRAPH_TEST_SSH_PATH"), var("PATH").unwrap_or_default());
    let shared = shared_registries();
    TestEnv {
        docker_host,
        docker_host_2,
        ssh_host,
        ssh_path,
        registry: shared.registry.clone(),
        auth_registry: shared.auth_registry.clone(),
        auth_user: shared.auth_user.clone(),
        auth_password: shared.auth_password.clone(),
        base_image,
        arm64_base_image,
    }
}

/// In CI the real-Docker tests must run: a plain `cargo test` there (which leaves them out) fails here.
#[test]
fn ci_runs_the_real_docker_tests() {
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            std::env::var_os("IMGRAPH_TEST_ENV").is_some(),
            "CI=true but the real Docker environment is missing: run `scripts/test.sh`"
        );
    }
}

/// Runs the docker CLI (against the test daemon), asserting success; its trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("run docker");
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The `--json` events a run printed.
pub fn events(run: &Run) -> Vec<Value> {
    run.stdout().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}

/// The final state of each image, from the `finished` events.
pub fn final_states(run: &Run) -> Vec<(String, String)> {
    let mut states: Vec<(String, String)> = events(run)
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["state"].as_str().unwrap().to_owned()))
        .collect();
    states.sort();
    states
}

/// The `summary` event of a `--json` run.
pub fn summary(run: &Run) -> Value {
    events(run).into_iter().find(|e| e["event"] == "summary").expect("a summary event")
}

/// `imgraph ARGS` running in the background in `tree`, its `--json` events read line by line as they come.
pub struct Background {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Background {
    pub fn start(tree: &TestTree, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(IMGRAPH)
            .args(args)
            .current_dir(tree.path())
            .env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run imgraph");
        let lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines, seen: Vec::new() }
    }

    /// Reads until a line that satisfies `wanted` (or the end).
    pub fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) {
        for line in self.lines.by_ref() {
            let line = line.expect("a line");
            let found = wanted(&line);
            self.seen.push(line);
            if found {
                return;
            }
        }
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn interrupt(&self) {
        let kill = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().expect("kill");
        assert!(kill.success());
    }

    /// Reads the rest and waits for the exit: its code, and every line.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>) {
        self.seen.extend(self.lines.by_ref().map_while(Result::ok));
        let status = self.child.wait().expect("wait");
        (status.code(), self.seen)
    }
}

/// `imgraph ARGS` in `tree` with `DOCKER_HOST` naming a socket nobody listens on.
pub fn run_without_daemon(tree: &TestTree, args: &[&str]) -> Output {
    let missing = tree.path().join("no-docker.sock");
    Command::new(IMGRAPH)
        .args(args)
        .current_dir(tree.path())
        .env("DOCKER_HOST", format!("unix://{}", missing.display()))
        .env("XDG_CONFIG_HOME", tree.path())
        .output()
        .expect("run imgraph")
}
