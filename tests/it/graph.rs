//! `imgraph graph`: edges from control files and Dockerfiles, order, formats, selection.

use insta::assert_snapshot;
use serde_json::Value;

use crate::harness::TestTree;

/// base <- {left, right} <- top, plus an unrelated image; edges come from FROM, COPY --from, RUN --mount and
/// control, with a registry whose port docker-pkg's `image_tag` cannot handle.
fn diamond() -> TestTree {
    TestTree::new()
        .file(
            "images.toml",
            "registry = \"localhost:5000\"\nnamespace = \"team\"\nbase_images = [\"localhost:5000/team/debian:12\"]\n",
        )
        .image("base", "base", "1.0-1", "FROM {{ \"debian\" | image_tag }}\nRUN true\n")
        .image(
            "branches/left",
            "left",
            "2.0",
            "ARG BASE={{ \"base\" | image_tag }}\nFROM ${BASE} AS build\nFROM build\n",
        )
        .image("branches/right", "right", "3.0", "FROM scratch\nCOPY --from={{ \"base\" | image_tag }} /x /x\n")
        .file("branches/right/control", "Package: right\nDepends: base (>= 1.0)\n")
        .image(
            "top",
            "top",
            "4.0",
            "FROM {{ \"left\" | image_tag }}\nRUN --mount=type=bind,from={{ \"right\" | image_tag }},target=/r true\n",
        )
        .file("top/control", "Package: top\nDepends: left, right\n")
        .image("zz-unrelated", "unrelated", "0.1", "FROM docker.io/library/alpine:3.20\n")
}

#[test]
fn text_lists_images_in_build_order() {
    assert_snapshot!(diamond().run(&["graph", "."]).success().stdout());
}

#[test]
fn json_has_the_documented_shape() {
    let run = diamond().run(&["graph", ".", "--format", "json"]).success();
    let graph: Value = serde_json::from_str(&run.stdout()).expect("graph --format json prints JSON");
    assert_snapshot!(serde_json::to_string_pretty(&graph).unwrap());
    // Every image comes after its dependencies in `order`.
    let order: Vec<&str> = graph["order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for image in graph["images"].as_array().unwrap() {
        let position = order.iter().position(|n| *n == image["name"]).unwrap();
        for dep in image["depends"].as_array().unwrap() {
            assert!(order.iter().position(|n| n == dep).unwrap() < position, "{dep} before {}", image["name"]);
        }
    }
}

#[test]
fn dot_and_mermaid() {
    let tree = diamond();
    assert_snapshot!("dot", tree.run(&["graph", ".", "--format", "dot"]).success().stdout());
    assert_snapshot!("mermaid", tree.run(&["graph", ".", "--format", "mermaid"]).success().stdout());
}

#[test]
fn select_pulls_in_dependencies_and_optionally_dependents() {
    let tree = diamond();
    let names = |args: &[&str]| -> String {
        let mut all = vec!["graph", ".", "--format", "json"];
        all.extend_from_slice(args);
        let graph: Value = serde_json::from_str(&tree.run(&all).success().stdout()).unwrap();
        graph["order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(names(&["--select", "left"]), "base left");
    assert_eq!(names(&["--select", "left:2.0"]), "base left");
    assert_eq!(names(&["--select", "localhost:5000/team/r*"]), "base right");
    assert_eq!(names(&["--select", "left", "--with-dependents"]), "base left right top");
    assert_eq!(names(&["--select", "base", "--select", "unre*"]), "base unrelated");
    assert_eq!(names(&["--select", "nothing"]), "");
}

#[test]
fn bad_select_pattern_is_a_usage_error() {
    let run = diamond().run(&["graph", ".", "--select", "a[b"]).expect_code(3);
    assert!(run.stderr().contains("invalid --select pattern"), "{}", run.stderr());
}

#[test]
fn check_warns_where_control_and_dockerfile_disagree() {
    assert_snapshot!(diamond().run(&["check", "."]).success().transcript());
}

#[test]
fn order_is_deterministic_with_ties_broken_by_name() {
    let mut tree = TestTree::new();
    for name in ["delta", "alpha", "charlie", "bravo"] {
        tree = tree.image(name, name, "1", "FROM scratch\n");
    }
    let tree = tree.image("echo", "echo", "1", "FROM {{ \"delta\" | image_tag }}\n");
    assert_eq!(tree.run(&["graph", "."]).success().stdout(), "alpha:1\nbravo:1\ncharlie:1\ndelta:1\necho:1 <- delta\n");
}

#[test]
fn alternatives_take_the_first_image_of_the_tree() {
    let tree = TestTree::new()
        .image("a", "a", "1", "FROM scratch\n")
        .image("b", "b", "1", "FROM scratch\n")
        .image("c", "c", "1", "FROM {{ \"b\" | image_tag }}\n")
        .file("c/control", "Package: c\nDepends: missing | b | a,\n");
    assert_eq!(tree.run(&["graph", "."]).success().stdout(), "a:1\nb:1\nc:1 <- b\n");
}

#[test]
fn render_prints_exactly_the_dockerfile() {
    let tree = diamond();
    let run = tree.run(&["render", ".", "top"]).success();
    assert_eq!(
        run.stdout(),
        "FROM localhost:5000/team/left:2.0\nRUN --mount=type=bind,from=localhost:5000/team/right:3.0,target=/r true"
    );
    assert_eq!(run.stderr(), "");
    // name:tag and the full label work too.
    assert_eq!(tree.run(&["render", ".", "top:4.0"]).success().stdout(), run.stdout());
    assert_eq!(tree.run(&["render", ".", "localhost:5000/team/top:4.0"]).success().stdout(), run.stdout());
}

#[test]
fn half_images_are_warnings_naming_the_directory() {
    let tree = TestTree::new()
        .image("a", "a", "1", "FROM scratch\n")
        .file("lonely/Dockerfile.template", "FROM scratch\n")
        .file("notes/changelog", "x");
    assert_snapshot!(tree.run(&["check", "."]).success().transcript());
}

#[test]
fn the_example_tree_and_the_example_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = crate::harness::run_in(root, &["graph".into(), "examples".into()], &[]).success();
    assert_eq!(run.stdout(), "base:1.0-1\nfmt:0.2.1 <- base\nlint:0.3.0 <- base\napp:2.0.0 <- fmt, lint\n");
    let args = ["-c", "images.example.toml", "check", "examples"].map(String::from);
    crate::harness::run_in(root, &args, &[]).success();
}

/// The config builds for amd64 and arm64 (written three ways); `app` declares its own platform.
fn platforms_tree() -> TestTree {
    TestTree::new()
        .file("images.toml", "platforms = [\"arm64\", \"linux/amd64\", \"x86_64\"]\n")
        .image("base", "base", "1.0", "FROM scratch\n")
        .image("app", "app", "2.0", "FROM {{ \"base\" | image_tag }}\n")
        .file("app/control", "Package: app\nDepends: base\nPlatforms: aarch64\n")
        .image("tools", "tools", "1.1", "FROM {{ \"base\" | image_tag }}\n")
}

#[test]
fn platforms_from_control_and_config_are_shown() {
    let tree = platforms_tree();
    assert_eq!(
        tree.run(&["graph", "."]).success().stdout(),
        "base:1.0 [linux/amd64, linux/arm64]\napp:2.0 [linux/arm64] <- base\ntools:1.1 [linux/amd64, linux/arm64] <- base\n"
    );
    let graph: Value = serde_json::from_str(&tree.run(&["graph", ".", "--format", "json"]).success().stdout()).unwrap();
    let platforms: Vec<(&str, String)> = graph["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| (image["name"].as_str().unwrap(), image["platforms"].to_string()))
        .collect();
    assert_eq!(
        platforms,
        [
            ("app", r#"["linux/arm64"]"#.to_owned()),
            ("base", r#"["linux/amd64","linux/arm64"]"#.to_owned()),
            ("tools", r#"["linux/amd64","linux/arm64"]"#.to_owned()),
        ]
    );
    let dot = tree.run(&["graph", ".", "--format", "dot"]).success().stdout();
    assert!(dot.contains("  \"app\" [label=\"app:2.0 [linux/arm64]\"];\n"), "{dot}");
    let mermaid = tree.run(&["graph", ".", "--format", "mermaid"]).success().stdout();
    assert!(mermaid.contains("  i0[\"app:2.0 [linux/arm64]\"]\n"), "{mermaid}");
    tree.run(&["check", "."]).success();
}

/// `app` wants arm64 of `php8.1-fpm`, which builds only amd64: `app` is broken, `app-tests` (built on it) is
/// blocked, and `unrelated` (arm64 only, on no parent) and `cli` (amd64 of php8.1-fpm) are fine.
#[test]
fn a_child_needing_a_platform_its_parent_does_not_build_is_an_error_for_it_alone() {
    let tree = TestTree::new()
        .image("php", "php8.1-fpm", "8.1.2", "FROM scratch\n")
        .file("php/control", "Package: php8.1-fpm\nPlatforms: linux/amd64\n")
        .image("app", "app", "1.0", "FROM {{ \"php8.1-fpm\" | image_tag }}\n")
        .file("app/control", "Package: app\nDepends: php8.1-fpm\nPlatforms: linux/amd64 linux/arm64\n")
        .image("app-tests", "app-tests", "1.0", "FROM {{ \"app\" | image_tag }}\n")
        .image("cli", "cli", "1.0", "FROM {{ \"php8.1-fpm\" | image_tag }}\n")
        .file("cli/control", "Package: cli\nPlatforms: amd64\n")
        .image("unrelated", "unrelated", "1.0", "FROM scratch\n")
        .file("unrelated/control", "Platforms: linux/arm64\n");
    assert_snapshot!("platform_mismatch_check", tree.run(&["check", "."]).expect_code(1).transcript());
    // As for any definition error of a listed image: the graph is whole, the error is said on stderr.
    assert_snapshot!("platform_mismatch_graph", tree.run(&["graph", "."]).success().transcript());
    let check: Value = serde_json::from_str(&tree.run(&["check", ".", "--json"]).expect_code(1).stdout()).unwrap();
    let errors: Vec<&Value> = check.as_array().unwrap().iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(errors.len(), 1, "{check:?}");
    assert_eq!(errors[0]["image"], "app");
}
