//! `--junit FILE`: a run's results as JUnit XML, which GitLab and GitHub render: one test case per image (and
//! per platform of an image with declared platforms), failures carrying their reason and the tail of the log,
//! images that were not attempted marked skipped.

use std::fmt::Write as _;

use crate::plan::State;
use crate::report::progress::Row;

/// The JUnit XML of a run: `command` (`build`, `publish`) names the suite; `done` says which final states pass.
/// An image with declared platforms has a case per platform (`name:tag linux/arm64`), where built is a pass;
/// with `publish` its own case then stands for the index put under its tags.
pub fn render(command: &str, rows: &[Row], done: impl Fn(State) -> bool) -> String {
    let publish = command == "publish";
    let cases: Vec<Case> = rows
        .iter()
        .flat_map(|row| {
            let platforms = row.platforms.iter().map(|platform| Case {
                name: format!("{}:{} {}", row.name, row.tag, platform.name),
                row: platform,
                passed: platform.state.is_success(),
            });
            let own = (row.platforms.is_empty() || publish).then(|| Case {
                name: format!("{}:{}", row.name, row.tag),
                row,
                passed: done(row.state),
            });
            platforms.chain(own)
        })
        .collect();
    let failed = cases.iter().filter(|c| !c.passed && !not_attempted(c.row.state)).count();
    let skipped = cases.iter().filter(|c| not_attempted(c.row.state)).count();
    let time: f64 = cases.iter().filter_map(|c| c.row.duration).map(|d| d.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\"",
        cases.len()
    );
    let _ = writeln!(xml, "<testsuites name=\"imgraph\" {counts}>");
    let _ = writeln!(xml, "  <testsuite name=\"imgraph {}\" {counts}>", escape(command));
    for case in &cases {
        let row = case.row;
        let seconds = row.duration.map_or(0.0, |d| d.as_secs_f64());
        let _ = write!(
            xml,
            "    <testcase classname=\"imgraph.{}\" name=\"{}\" time=\"{seconds:.3}\"",
            escape(command),
            escape(&case.name)
        );
        let first_line = row.reason.lines().next().unwrap_or_default();
        if not_attempted(row.state) {
            let _ = writeln!(xml, ">\n      <skipped message=\"{}\"/>\n    </testcase>", escape(first_line));
        } else if !case.passed {
            let _ = writeln!(
                xml,
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>",
                row.state.as_str(),
                escape(first_line),
                escape(&row.reason)
            );
            if let Some(log) = &row.log {
                let _ = writeln!(xml, "      <system-out>log: {}</system-out>", escape(&log.display().to_string()));
            }
            xml.push_str("    </testcase>\n");
        } else {
            xml.push_str("/>\n");
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// A test case: an image, or one platform of it.
struct Case<'a> {
    name: String,
    row: &'a Row,
    passed: bool,
}

/// Skipped (an image it needs failed) and cancelled images were not attempted.
fn not_attempted(state: State) -> bool {
    matches!(state, State::Skipped | State::Cancelled)
}

/// Text for XML attributes and content; characters XML 1.0 cannot hold are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(name: &str, state: State, reason: &str) -> Row {
        Row {
            name: name.into(),
            tag: "1.0".into(),
            state,
            reason: reason.into(),
            duration: Some(Duration::from_millis(1500)),
            log: Some(format!("logs/{name}.log").into()),
            platforms: Vec::new(),
        }
    }

    #[test]
    fn cases_fail_skip_and_pass() {
        let rows = [
            row("ok", State::Verified, "built and verified"),
            row("bad", State::Error, "build failed: <exit 3> & more\n--- last output:\nboom \u{1}"),
            row("later", State::Skipped, "not attempted: bad failed"),
        ];
        let xml = render("build", &rows, State::is_success);
        assert!(
            xml.contains(
                r#"<testsuite name="imgraph build" tests="3" failures="1" errors="0" skipped="1" time="4.500">"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"<testcase classname="imgraph.build" name="ok:1.0" time="1.500"/>"#), "{xml}");
        assert!(xml.contains(r#"<failure type="error" message="build failed: &lt;exit 3&gt; &amp; more">"#), "{xml}");
        assert!(xml.contains("--- last output:\nboom </failure>"), "{xml}");
        assert!(xml.contains(r#"<skipped message="not attempted: bad failed"/>"#), "{xml}");
    }

    #[test]
    fn a_case_per_platform_and_for_the_index_when_publishing() {
        let mut multi = row("multi", State::Error, "not published: linux/arm64 failed");
        multi.platforms = vec![
            row("linux/amd64", State::Verified, "built and verified"),
            row("linux/arm64", State::Error, "build failed: exec format error"),
        ];
        let rows = [multi, row("plain", State::Published, "pushed")];
        let build = render("build", &rows, State::is_success);
        assert!(build.contains(r#"tests="3" failures="1" errors="0" skipped="0""#), "{build}");
        assert!(build.contains(r#"name="multi:1.0 linux/amd64" time="1.500"/>"#), "{build}");
        assert!(build.contains(r#"name="multi:1.0 linux/arm64" time="1.500">"#), "{build}");
        assert!(!build.contains(r#"name="multi:1.0""#), "{build}");
        let publish = render("publish", &rows, |state| state == State::Published);
        assert!(publish.contains(r#"tests="4" failures="2" errors="0" skipped="0""#), "{publish}");
        assert!(publish.contains(r#"name="multi:1.0" time="1.500">"#), "{publish}");
        assert!(publish.contains(r#"message="not published: linux/arm64 failed""#), "{publish}");
    }
}
