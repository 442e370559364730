//! A small fluent harness: write an image tree into a temp dir, run `imgraph` on it, look at the result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

    /// A symbolic link at `path` pointing to `target`.
    pub fn symlink(self, target: &str, path: &str) -> Self {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().expect("link has a parent")).expect("create dirs");
        std::os::unix::fs::symlink(target, &path).expect("symlink");
        self
    }

    /// Runs `imgraph ARGS` in the tree root; `{tree}` in an argument is replaced by the root path.
    pub fn run(&self, args: &[&str]) -> Run {
        let root = self.path().to_string_lossy().into_owned();
        let args: Vec<String> = args.iter().map(|a| a.replace("{tree}", &root)).collect();
        run_in(self.path(), &args, &[self.path()])
    }
}

/// Runs `imgraph` in `cwd` with an isolated environment (no user config); `redact` paths become `[TREE]`.
pub fn run_in(cwd: &Path, args: &[String], redact: &[&Path]) -> Run {
    let output = Command::new(IMGRAPH)
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"))
        .env_remove("HOME")
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
