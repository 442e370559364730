//! Verification after a build, docker-pkg compatible: `verify_command` + `verify_args` run on the host with
//! `{path}` (the image directory) and `{image}` (the full reference) substituted per argument, skipped when
//! a file an argument names does not exist. Output is captured for the image's log; a timeout or a cancellation
//! kills the script and everything it started (it runs in a process group of its own).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::config::{Config, PROXY_VARIABLES};

/// Environment passed through to verification scripts. docker-pkg passes only `PATH` (and proxies); the
/// Docker variables are added so a script's `docker run` reaches the daemon imgraph built on.
const PASSED_ENV: [&str; 7] = [
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONFIG",
    // The ssh agent, for an `ssh://` DOCKER_HOST.
    "SSH_AUTH_SOCK",
];

/// How a verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Passed,
    /// The script an argument names does not exist (docker-pkg: counts as verified).
    Skipped {
        missing: PathBuf,
    },
    Failed(String),
}

/// The shells whose `-c` script gets its `{path}` and `{image}` quoted.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"];

/// The command line that verifies `image` (a full reference) built from `dir`, or the file whose absence
/// skips verification.
///
/// `{path}` and `{image}` are substituted in each argument. In the script of a shell's `-c` (the default
/// `bash -c '{path}/test.sh {image}'`), they are shell-quoted for where they stand (bare, in single or in
/// double quotes), so a directory called `a b` or `$(x)` is one word and runs nothing.
pub fn command_line(config: &Config, dir: &Path, image: &str) -> Result<Vec<String>, PathBuf> {
    let dir = dir.to_string_lossy();
    let raw = |text: &str| text.replace("{path}", &dir).replace("{image}", image);
    for arg in &config.verify_args {
        // The file is the word of each argument that holds `{path}`: `{path}/test.sh {image}` names
        // `{path}/test.sh`. Quotes around it are the shell's, not the file's.
        for word in arg.split_whitespace().filter(|w| w.contains("{path}")) {
            let path = PathBuf::from(raw(&word.replace(['\'', '"'], "")));
            if !path.exists() {
                return Err(path);
            }
        }
    }
    let script = script_position(config);
    let args = config.verify_args.iter().enumerate().map(|(i, arg)| {
        if Some(i) == script { substitute_quoted(arg, &[("{path}", &dir), ("{image}", image)]) } else { raw(arg) }
    });
    Ok(std::iter::once(config.verify_command.clone()).chain(args).collect())
}

/// Which argument is a shell script: the one after `-c` (or `-ec`, `-xc`…) when the command is a shell.
fn script_position(config: &Config) -> Option<usize> {
    let command = Path::new(&config.verify_command).file_name()?.to_str()?;
    if !SHELLS.contains(&command) {
        return None;
    }
    let is_c = |arg: &str| {
        arg.strip_prefix('-').is_some_and(|flags| flags.contains('c') && flags.chars().all(|c| c.is_ascii_alphabetic()))
    };
    config.verify_args.iter().position(|arg| is_c(arg)).map(|c| c + 1).filter(|&i| i < config.verify_args.len())
}

/// `script` with each placeholder replaced by its value, quoted for the shell where it stands.
fn substitute_quoted(script: &str, values: &[(&str, &str)]) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut out = String::with_capacity(script.len());
    let mut quote = Quote::None;
    let mut rest = script;
    while let Some(c) = rest.chars().next() {
        if let Some((placeholder, value)) = values.iter().find(|(p, _)| rest.starts_with(p)) {
            match quote {
                Quote::None => out.push_str(&format!("'{}'", value.replace('\'', r"'\''"))),
                Quote::Single => out.push_str(&value.replace('\'', r"'\''")),
                Quote::Double => {
                    for v in value.chars() {
                        if matches!(v, '\\' | '"' | '$' | '`') {
                            out.push('\\');
                        }
                        out.push(v);
                    }
                }
            }
            rest = &rest[placeholder.len()..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        out.push(c);
        match (quote, c) {
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            // A backslash keeps the next character as it is (but inside single quotes).
            (Quote::None | Quote::Double, '\\') => {
                if let Some(next) = rest.chars().next() {
                    out.push(next);
                    rest = &rest[next.len_utf8()..];
                }
            }
            _ => {}
        }
    }
    out
}

/// Runs the verification, sending each output line to `log`.
pub async fn verify(
    config: &Config,
    dir: &Path,
    image: &str,
    env: &[(&str, String)],
    timeout: Duration,
    log: &mut (dyn FnMut(&str) + Send),
) -> Verification {
    let argv = match command_line(config, dir, image) {
        Ok(argv) => argv,
        Err(missing) => {
            tracing::info!(image, missing = %missing.display(), "no verification script: verified as docker-pkg does");
            return Verification::Skipped { missing };
        }
    };
    tracing::info!(image, command = ?argv, timeout_s = timeout.as_secs(), "verifying");
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Its own process group, so a timeout or Ctrl-C reaches what the script started too (`sleep`, `docker run`).
    command.kill_on_drop(true).process_group(0);
    for name in PASSED_ENV {
        if let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) {
            command.env(name, value);
        }
    }
    if let Some(proxy) = &config.http_proxy {
        for name in PROXY_VARIABLES {
            command.env(name, proxy);
        }
    }
    // The platform's own (`IMGRAPH_PLATFORM`, and `DOCKER_HOST` of its builder) win over the passed ones.
    command.envs(env.iter().map(|(name, value)| (name, value)));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Verification::Failed(format!("cannot run {}: {e}", argv[0])),
    };
    let mut group = GroupKiller(child.id());
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Verification::Failed("cannot capture the verification's output".into());
    };
    let mut stdout = BufReader::new(stdout).lines();
    let mut stderr = BufReader::new(stderr).lines();
    let run = async {
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                line = stdout.next_line(), if out_open => match line {
                    Ok(Some(line)) => log(&line),
                    _ => out_open = false,
                },
                line = stderr.next_line(), if err_open => match line {
                    Ok(Some(line)) => log(&line),
                    _ => err_open = false,
                },
            }
        }
        child.wait().await
    };
    let result = tokio::time::timeout(timeout, run).await;
    if result.is_ok() {
        group.0 = None;
    }
    match &result {
        Ok(Ok(status)) => tracing::info!(image, exit_code = status.code(), "verification ended"),
        Ok(Err(e)) => tracing::info!(image, error = %e, "verification did not run"),
        Err(_) => tracing::info!(image, "verification timed out; killing it"),
    }
    match result {
        Ok(Ok(status)) if status.success() => Verification::Passed,
        Ok(Ok(status)) => Verification::Failed(match status.code() {
            Some(code) => format!("verification failed with exit code {code}"),
            None => "verification was killed by a signal".into(),
        }),
        Ok(Err(e)) => Verification::Failed(format!("verification did not run: {e}")),
        Err(_) => Verification::Failed(format!("verification timed out after {timeout:?}")),
    }
}

/// Kills a process group when dropped while armed (the script did not end by itself): TERM now, KILL a moment
/// later for what ignores TERM.
struct GroupKiller(Option<u32>);

/// How long a verification's processes get between TERM and KILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(group) = self.0.and_then(|pid| i32::try_from(pid).ok()) else { return };
        signal_group(group, libc::SIGTERM);
        std::thread::spawn(move || {
            std::thread::sleep(KILL_GRACE);
            signal_group(group, libc::SIGKILL);
        });
    }
}

fn signal_group(group: i32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the process group.
    unsafe {
        libc::kill(-group, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_per_argument_and_skips_missing_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::defaults();
        let missing = command_line(&config, dir.path(), "reg/a:1").unwrap_err();
        assert_eq!(missing, dir.path().join("test.sh"));
        std::fs::write(dir.path().join("test.sh"), "exit 0").unwrap();
        let argv = command_line(&config, dir.path(), "reg/a:1; rm -rf /").unwrap();
        let script = format!("'{}'/test.sh 'reg/a:1; rm -rf /'", dir.path().display());
        assert_eq!(argv, vec!["/bin/bash".to_owned(), "-c".to_owned(), script]);
    }

    #[test]
    fn placeholders_are_quoted_where_they_stand() {
        let values = [("{path}", "/t/it's $(x)"), ("{image}", "r/a:1")];
        assert_eq!(substitute_quoted("{path}/test.sh {image}", &values), r"'/t/it'\''s $(x)'/test.sh 'r/a:1'");
        assert_eq!(substitute_quoted("'{path}/test.sh' {image}", &values), r"'/t/it'\''s $(x)/test.sh' 'r/a:1'");
        assert_eq!(substitute_quoted("\"{path}\" \\{image}", &values), r#""/t/it's \$(x)" \{image}"#);
        let mut config = Config::defaults();
        config.verify_command = "/usr/bin/python3".into();
        assert_eq!(script_position(&config), None);
        config.verify_command = "sh".into();
        config.verify_args = vec!["-ec".into(), "x".into()];
        assert_eq!(script_position(&config), Some(1));
    }

    #[tokio::test]
    async fn paths_with_spaces_and_shell_syntax_verify() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("my images/$(touch pwned)");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("test.sh"), "#!/bin/sh\necho \"verifying $1\"\n").unwrap();
        std::fs::set_permissions(dir.join("test.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut lines = Vec::new();
        let result =
            verify(&Config::defaults(), &dir, "img:1", &[], Duration::from_secs(10), &mut |l| lines.push(l.to_owned()))
                .await;
        assert_eq!(result, Verification::Passed, "{lines:?}");
        assert_eq!(lines, ["verifying img:1"]);
        assert!(!base.path().join("my images/pwned").exists() && !Path::new("pwned").exists());
    }

    #[tokio::test]
    async fn captures_output_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.verify_command = "/bin/sh".into();
        config.verify_args = vec!["-c".into(), "echo testing $0; echo oops >&2; exit 3".into(), "{image}".into()];
        let mut lines = Vec::new();
        let result =
            verify(&config, dir.path(), "img:1", &[], Duration::from_secs(10), &mut |l| lines.push(l.to_owned())).await;
        assert_eq!(result, Verification::Failed("verification failed with exit code 3".into()));
        lines.sort();
        assert_eq!(lines, vec!["oops", "testing img:1"]);
    }

    #[tokio::test]
    async fn times_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.verify_command = "/bin/sh".into();
        config.verify_args = vec!["-c".into(), "sleep 5".into()];
        let result = verify(&config, dir.path(), "img:1", &[], Duration::from_millis(200), &mut |_| {}).await;
        assert_eq!(result, Verification::Failed("verification timed out after 200ms".into()));
    }

    #[tokio::test]
    async fn a_timeout_kills_what_the_script_started() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut config = Config::defaults();
        config.verify_command = "/bin/sh".into();
        config.verify_args = vec!["-c".into(), format!("sleep 30 & echo $! > {}; wait", pidfile.display())];
        let result = verify(&config, dir.path(), "img:1", &[], Duration::from_millis(300), &mut |_| {}).await;
        assert!(matches!(result, Verification::Failed(_)));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        let proc = Path::new("/proc").join(&pid);
        for _ in 0..50 {
            let zombie_or_gone = std::fs::read_to_string(proc.join("stat")).map_or(true, |s| s.contains(") Z "));
            if zombie_or_gone {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the script's `sleep` (pid {pid}) survived the timeout");
    }
}
