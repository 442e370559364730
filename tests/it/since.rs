//! `--since REF`: the images whose files changed since a git revision (their directory, what their template
//! includes, what their links lead to, uncommitted and untracked changes included), plus their dependents.

use std::path::Path;
use std::process::Command;

use crate::harness::TestTree;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// base <- app <- top; tool (context link into common/); lone; app includes common/snippet.j2 through a link.
fn tree() -> TestTree {
    let tree = TestTree::new()
        .image("images/base", "base", "1.0", "FROM scratch\n")
        .image("images/app", "app", "1.0", "FROM {{ \"base\" | image_tag }}\n{% include 'snippet.j2' %}\n")
        .file("images/common/snippet.j2", "RUN true\n")
        .symlink("../common/snippet.j2", "images/app/snippet.j2")
        .image("images/top", "top", "1.0", "FROM {{ \"app\" | image_tag }}\n")
        .image("images/tool", "tool", "1.0", "FROM scratch\nCOPY monitoring /m\n")
        .file("images/common/monitoring/status.sh", "echo ok\n")
        .symlink("../common/monitoring", "images/tool/monitoring")
        .image("images/lone", "lone", "1.0", "FROM scratch\n");
    git(tree.path(), &["init", "-q", "-b", "main"]);
    git(tree.path(), &["add", "."]);
    git(tree.path(), &["commit", "-qm", "tree"]);
    tree
}

fn since(tree: &TestTree) -> String {
    tree.run(&["graph", "images", "--since", "HEAD"]).success().stdout().lines().map(|l| format!("{l}\n")).collect()
}

#[test]
fn only_what_changed_and_its_dependents_is_selected() {
    let tree = tree();
    assert_eq!(since(&tree), "", "nothing changed since HEAD");

    std::fs::write(tree.path().join("images/common/snippet.j2"), "RUN echo changed\n").unwrap();
    assert_eq!(since(&tree), "base:1.0\napp:1.0 <- base\ntop:1.0 <- app\n", "an included file, through a link");
    git(tree.path(), &["commit", "-qam", "snippet"]);

    std::fs::write(tree.path().join("images/common/monitoring/status.sh"), "echo changed\n").unwrap();
    assert_eq!(since(&tree), "tool:1.0\n", "a file a context link leads to");
    git(tree.path(), &["commit", "-qam", "monitoring"]);

    std::fs::write(tree.path().join("images/lone/new-file"), "untracked\n").unwrap();
    assert_eq!(since(&tree), "lone:1.0\n", "an untracked file");
    std::fs::remove_file(tree.path().join("images/lone/new-file")).unwrap();

    std::fs::write(tree.path().join("images/base/Dockerfile.template"), "FROM scratch\nLABEL x=y\n").unwrap();
    assert_eq!(since(&tree), "base:1.0\napp:1.0 <- base\ntop:1.0 <- app\n", "a parent drags its dependents");
    git(tree.path(), &["commit", "-qam", "base"]);
    // Against an older revision, every change since counts.
    let older = tree.run(&["graph", "images", "--since", "HEAD~3", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&older.stdout()).unwrap();
    assert_eq!(json["order"], serde_json::json!(["base", "app", "tool", "top"]));

    // A deleted file counts too, and --select narrows further.
    std::fs::remove_file(tree.path().join("images/common/monitoring/status.sh")).unwrap();
    std::fs::write(tree.path().join("images/lone/Dockerfile.template"), "FROM scratch\nLABEL a=b\n").unwrap();
    let narrowed = tree.run(&["graph", "images", "--since", "HEAD", "--select", "lone"]).success();
    assert_eq!(narrowed.stdout(), "lone:1.0\n");
}

#[test]
fn a_bad_revision_is_an_error_naming_it() {
    let tree = tree();
    let run = tree.run(&["graph", "images", "--since", "no-such-ref"]).expect_code(3);
    assert!(run.stderr().contains("--since no-such-ref: git diff"), "{}", run.stderr());
    let outside = TestTree::new().image("a", "a", "1.0", "FROM scratch\n");
    let run = outside.run(&["graph", ".", "--since", "HEAD"]).expect_code(3);
    assert!(run.stderr().contains("--since HEAD: git rev-parse"), "{}", run.stderr());
}
