//! Bad input: every case names the file (and line), never panics, and concerns its own image only: the rest of
//! the tree is scanned and graphed as usual. What dpkg only warns about in a changelog is a warning.

use insta::assert_snapshot;

use crate::harness::{TestTree, changelog};

const BASE: &str = "FROM scratch\n";

/// `check` on a tree with one broken image beside a good one.
fn check_with(broken: TestTree) -> crate::harness::Run {
    broken.image("good", "good", "1.0", BASE).run(&["check", "."])
}

#[test]
fn empty_changelog() {
    let run = check_with(TestTree::new().file("a/changelog", "").file("a/Dockerfile.template", BASE)).expect_code(1);
    assert_snapshot!(run.transcript());
}

#[test]
fn garbage_changelog() {
    let tree = TestTree::new().file("a/changelog", "this is not a changelog\n").file("a/Dockerfile.template", BASE);
    assert_snapshot!(check_with(tree).expect_code(1).transcript());
}

#[test]
fn truncated_changelog() {
    let tree = TestTree::new()
        .file("a/changelog", "a (1.0) wikimedia; urgency=medium\n\n  * Initial rel")
        .file("a/Dockerfile.template", BASE);
    assert_snapshot!(check_with(tree).expect_code(0).transcript());
}

#[test]
fn changelog_with_a_broken_trailer() {
    let tree = TestTree::new()
        .file("a/changelog", "a (1.0) wikimedia; urgency=medium\n\n  * Change.\n\n -- Nobody  not a date\n")
        .file("a/Dockerfile.template", BASE);
    assert_snapshot!(check_with(tree).expect_code(0).transcript());
}

/// The 2023 production-images date that made the whole tree unusable: dpkg only warns about it.
#[test]
fn a_non_conformant_trailer_date_is_a_warning() {
    let text = "spark-operator (0.3-1) wikimedia; urgency=medium\n\n  * Entrypoint.\n\n -- Luca <l@example.org>  Thu Mar 9 11:41:33 2023 +0100\n";
    let tree = TestTree::new().file("a/changelog", text).file("a/Dockerfile.template", BASE).image(
        "child",
        "child",
        "1.0",
        "FROM {{ \"spark-operator\" | image_tag }}\n",
    );
    let run = tree.run(&["check", "."]).expect_code(0);
    assert!(run.stdout().contains("warning: ./a/changelog:5: cannot parse non-conformant date"), "{}", run.stdout());
    let graph = tree.run(&["graph", "."]).success();
    assert_eq!(
        graph.stdout(),
        "good:1.0\nspark-operator:0.3-1\nchild:1.0 <- spark-operator\n".replace("good:1.0\n", "")
    );
}

#[test]
fn changelog_missing_its_trailer_before_the_next_entry() {
    let text = "a (1.1) wikimedia; urgency=medium\n\n  * Change.\n\na (1.0) wikimedia; urgency=medium\n\n  * Old.\n\n -- A <a@b.c>  Mon, 23 Nov 2026 10:00:00 +0000\n";
    let tree = TestTree::new().file("a/changelog", text).file("a/Dockerfile.template", BASE);
    assert_snapshot!(check_with(tree).expect_code(0).transcript());
}

#[test]
fn changelog_with_invalid_utf8() {
    let mut text = changelog("a", "1.0").into_bytes();
    text.splice(40..40, [0xff, 0xfe]);
    let tree = TestTree::new().file("a/changelog", text).file("a/Dockerfile.template", BASE);
    assert_snapshot!(check_with(tree).expect_code(0).transcript());
}

#[test]
fn a_malformed_changelog_leaves_the_rest_of_the_graph() {
    let tree = TestTree::new().file("a/changelog", "garbage\n").file("a/Dockerfile.template", BASE);
    let run = tree.image("good", "good", "1.0", BASE).run(&["graph", "."]).expect_code(1);
    assert_eq!(run.stdout(), "good:1.0\n", "the rest of the tree is listed");
    assert_snapshot!(run.transcript());
}

#[test]
fn invalid_tag_is_an_error_for_that_image_only() {
    let tree = TestTree::new()
        .image("base", "base", "1.0", BASE)
        .image("server", "server", "0.0.1~alpha1", "FROM {{ \"base\" | image_tag }}\n")
        .file("server/control", "Package: server\nDepends: base\n");
    assert_snapshot!("invalid_tag_check", tree.run(&["check", "."]).expect_code(1).transcript());
    // graph and render still work, and say which image cannot be built.
    assert_snapshot!("invalid_tag_graph", tree.run(&["graph", "."]).success().transcript());
    assert_eq!(tree.run(&["render", ".", "server"]).success().stdout(), "FROM base:1.0");
}

#[test]
fn duplicate_names() {
    let tree = TestTree::new()
        .image("one", "same", "1.0", BASE)
        .image("two", "same", "2.0", BASE)
        .image("other", "other", "1.0", BASE);
    assert_snapshot!("duplicate_check", tree.run(&["check", "."]).expect_code(1).transcript());
    assert_snapshot!("duplicate_graph", tree.run(&["graph", "."]).expect_code(1).transcript());
}

#[test]
fn self_cycle() {
    let tree = TestTree::new().image("a", "a", "1.0", BASE).file("a/control", "Package: a\nDepends: a\n");
    assert_snapshot!(tree.run(&["graph", "."]).expect_code(1).transcript());
}

#[test]
fn two_cycle() {
    let tree = TestTree::new()
        .image("a", "a", "1.0", "FROM {{ \"b\" | image_tag }}\n")
        .file("a/control", "Package: a\nDepends: b\n")
        .image("b", "b", "1.0", BASE)
        .file("b/control", "Package: b\nBuild-Depends: a\n");
    assert_snapshot!(tree.run(&["graph", "."]).expect_code(1).transcript());
}

#[test]
fn long_cycle_through_dockerfiles() {
    // a -> b -> c -> d -> a, found in FROM lines only (control files are silent).
    let mut tree = TestTree::new();
    for (name, parent) in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")] {
        tree = tree.image(name, name, "1", &format!("FROM {{{{ \"{parent}\" | image_tag }}}}\n"));
    }
    let tree = tree.image("outside", "outside", "1", BASE);
    assert_snapshot!("long_cycle_graph", tree.run(&["graph", "."]).expect_code(1).transcript());
    assert_snapshot!("long_cycle_check", tree.run(&["check", "."]).expect_code(1).transcript());
}

#[test]
fn unknown_dependency() {
    let tree =
        TestTree::new().image("a", "a", "1.0", BASE).file("a/control", "Package: a\nDepends: nowhere (>= 1.0)\n");
    assert_snapshot!("unknown_dependency_check", tree.run(&["check", "."]).expect_code(1).transcript());
    // Listed, but its dependencies are not all known: the graph is incomplete.
    assert_eq!(tree.run(&["graph", "."]).expect_code(1).stdout(), "a:1.0\n");
}

#[test]
fn template_syntax_error() {
    let tree = TestTree::new().image("a", "a", "1.0", "FROM scratch\nRUN {{ oops }\n");
    assert_snapshot!("syntax_error_check", tree.run(&["check", "."]).expect_code(1).transcript());
    assert_snapshot!("syntax_error_render", tree.run(&["render", ".", "a"]).expect_code(3).transcript());
}

#[test]
fn undefined_variable() {
    let tree = TestTree::new().image("a", "a", "1.0", "FROM scratch\n\nRUN echo {{ not_defined }}\n");
    assert_snapshot!(tree.run(&["render", ".", "a"]).expect_code(3).transcript());
}

#[test]
fn unreadable_files() {
    // Root reads through file modes, so unreadable means: a control that is a directory, a dangling template.
    let tree = TestTree::new()
        .image("a", "a", "1.0", BASE)
        .file("a/control/oops", "")
        .file("b/changelog", changelog("b", "1.0"))
        .symlink("missing-file", "b/Dockerfile.template");
    assert_snapshot!(tree.run(&["check", "."]).expect_code(1).transcript());
}

#[test]
fn symlink_loops_are_not_followed_and_looping_files_are_named() {
    let tree = TestTree::new()
        .image("a", "a", "1.0", BASE)
        .symlink(".", "a/loop")
        .symlink("..", "a/up")
        .file("b/Dockerfile.template", BASE)
        .symlink("changelog", "b/changelog");
    assert_snapshot!(tree.run(&["check", "."]).expect_code(1).transcript());
}

#[test]
fn bad_toml_config() {
    let tree = TestTree::new()
        .image("a", "a", "1.0", BASE)
        .file("images.toml", "registry = \"r\"\nbase_images = \"not a list\"\n");
    assert_snapshot!(tree.run(&["graph", "."]).expect_code(3).transcript());
}

#[test]
fn bad_yaml_config() {
    let tree =
        TestTree::new().image("a", "a", "1.0", BASE).file("conf.yaml", "registry: r\nbase_images:\n  - a\n - b\n");
    assert_snapshot!(tree.run(&["-c", "conf.yaml", "graph", "."]).expect_code(3).transcript());
}

#[test]
fn missing_config_file() {
    let tree = TestTree::new().image("a", "a", "1.0", BASE);
    assert_snapshot!(tree.run(&["-c", "nope.yaml", "check", "."]).expect_code(3).transcript());
}

#[test]
fn directory_that_does_not_exist() {
    let tree = TestTree::new();
    for command in ["graph", "check"] {
        let run = tree.run(&[command, "no/such/dir"]).expect_code(3);
        assert_eq!(run.stderr(), "imgraph: error: no/such/dir: no such directory\n");
    }
    tree.run(&["render", "no/such/dir", "x"]).expect_code(3);
}

#[test]
fn unknown_image_for_render_suggests_names() {
    let tree = TestTree::new().image("golang", "golang1.22", "1.0", BASE);
    assert_snapshot!(tree.run(&["render", ".", "golang1.2"]).expect_code(3).transcript());
}

#[test]
fn usage_errors_exit_2() {
    TestTree::new().run(&["graph"]).expect_code(2);
    TestTree::new().run(&["frobnicate"]).expect_code(2);
}

#[test]
fn invalid_platform_in_control() {
    let tree = TestTree::new()
        .image("a", "a", "1.0", BASE)
        .file("a/control", "Package: a\nPlatforms: linux/amd64,\n linux/arm64/v8/extra\n");
    assert_snapshot!("invalid_platform_check", check_with(tree).expect_code(1).transcript());
}

#[test]
fn repeated_platforms_field_in_control() {
    let tree = TestTree::new()
        .image("a", "a", "1.0", BASE)
        .file("a/control", "Package: a\nPlatforms: linux/amd64\n\nPackage: a-dev\nPlatforms: linux/arm64\n");
    let run = check_with(tree).expect_code(1);
    assert!(
        run.stdout().contains("error: ./a/control:5: field `Platforms` repeats the one on line 2\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn invalid_platform_config_keys() {
    let cases = [
        ("images.toml", "registry = \"r\"\nplatforms = [\"linux/amd64\", \"linux\"]\n", "images.toml:2:"),
        ("conf.yaml", "platforms:\n  - linux/amd64\n  - linux/arm64/v8/x\n", "conf.yaml:3:"),
        (
            "images.toml",
            "[builders]\n\"linux/amd64\" = \"default\"\n\"linux/arm64\" = \"http://arm\"\n",
            "images.toml:3:",
        ),
        ("conf.yaml", "builders:\n  linux/amd64: default\n  linux/&: default\n", "conf.yaml:3:"),
        ("conf.yaml", "builders:\n  arm64: default\n  linux/aarch64: tcp://a:2375\n", "conf.yaml:2:"),
        ("images.toml", "\nbuilder = \"kaniko\"\n", "images.toml:2:"),
        ("conf.yaml", "registry: r\nbuilder: [buildkit]\n", "conf.yaml:2:"),
    ];
    let mut transcripts = String::new();
    for (file, text, location) in cases {
        let tree = TestTree::new().image("a", "a", "1.0", BASE).file(file, text);
        let run = tree.run(&["-c", file, "graph", "."]).expect_code(3);
        assert!(run.stderr().starts_with(&format!("imgraph: error: {location}")), "{}", run.stderr());
        assert_eq!(run.stdout(), "");
        transcripts.push_str(&run.stderr());
    }
    assert_snapshot!(transcripts);
}
