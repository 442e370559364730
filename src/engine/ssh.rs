//! `ssh://[USER@]HOST[:PORT][/SOCKET]` Docker endpoints, reached as the Docker CLI reaches them: each connection
//! is an `ssh … HOST docker system dial-stdio` process, so the user's ssh configuration, keys, agent and known
//! hosts apply, and the Engine API travels over that process's standard input and output.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, BufReader, Join};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// What ssh last wrote on stderr (its own errors, and the remote `docker`'s), for the error that names the host.
#[derive(Debug, Default)]
pub(super) struct Said {
    last_line: Mutex<String>,
    /// Connections whose stderr is still being read.
    reading: AtomicUsize,
}

impl Said {
    /// The last line ssh wrote, once every ssh process that ended has been read to its end (ssh writes why it
    /// failed just before it exits, while hyper may already have seen the connection close), waiting at most
    /// `SAID_WAIT` for the processes that still run.
    pub(super) async fn last_line(&self) -> String {
        let deadline = tokio::time::Instant::now() + SAID_WAIT;
        while self.reading.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        crate::lock(&self.last_line).clone()
    }
}

/// How long an error waits for ssh's last words.
const SAID_WAIT: Duration = Duration::from_secs(2);

/// How much of ssh's stderr is kept.
const SAID_LIMIT: usize = 2048;

/// Where an `ssh://` endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Destination {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    /// The daemon's socket on that host, when not its default.
    socket: Option<String>,
}

impl Destination {
    /// Reads `ssh://[USER@]HOST[:PORT][/SOCKET]`. User and host names are kept to the characters names have
    /// (ssh puts them into commands of its configuration, such as `ProxyCommand`), an IPv6 address goes in
    /// brackets, and a password has no place (the Docker CLI refuses one too).
    pub(super) fn parse(endpoint: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("`{endpoint}` is not an ssh:// Docker endpoint: {why}");
        let rest = endpoint.strip_prefix("ssh://").ok_or_else(|| invalid("it does not start with ssh://"))?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (user, address) = match authority.rsplit_once('@') {
            Some((user, _)) if user.contains(':') => return Err(invalid("a password cannot be given in it")),
            Some((user, address)) if is_name(user) => (Some(user.to_owned()), address),
            Some(_) => return Err(invalid("the user name is empty or has characters user names do not have")),
            None => (None, authority),
        };
        let (host, port) = match address.strip_prefix('[') {
            Some(bracketed) => {
                let (ip, after) = bracketed.split_once(']').ok_or_else(|| invalid("a `[` without its `]`"))?;
                if ip.is_empty() || !ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
                    return Err(invalid("the address in brackets is not an IPv6 address"));
                }
                match after.strip_prefix(':') {
                    Some(port) => (ip, Some(port)),
                    None if after.is_empty() => (ip, None),
                    None => return Err(invalid("something follows the `]`")),
                }
            }
            None => match address.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(invalid("write an IPv6 address in brackets, as in ssh://[::1]:22"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        if !(is_name(host) || address.starts_with('[')) {
            return Err(invalid("the host name is empty or has characters host names do not have"));
        }
        let port = match port {
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| invalid(&format!("`{port}` is not a port number (1 to 65535)")))?,
            ),
            None => None,
        };
        let socket = (!path.is_empty() && path != "/").then(|| path.to_owned());
        Ok(Self { user, host: host.to_owned(), port, socket })
    }

    /// The Docker CLI's command (`ssh -o ConnectTimeout=30 -T [-l USER] [-p PORT] -- HOST docker system
    /// dial-stdio`), in batch mode: a password prompt would hang a run, or garble its display.
    fn command(&self) -> Command {
        let mut command = Command::new("ssh");
        command.args(["-o", "ConnectTimeout=30", "-o", "BatchMode=yes", "-T"]);
        if let Some(user) = &self.user {
            command.args(["-l", user]);
        }
        if let Some(port) = self.port {
            command.args(["-p", &port.to_string()]);
        }
        command.args(["--", &self.host, "docker"]);
        if let Some(socket) = &self.socket {
            // The remote shell reads the command line.
            command.args(["--host", &format!("'unix://{}'", socket.replace('\'', r"'\''"))]);
        }
        command.args(["system", "dial-stdio"]);
        command
    }
}

/// A user or host name: letters, digits, `.`, `_` and `-`, not first.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A client for `endpoint`, not yet contacted, and what ssh says on stderr.
pub(super) fn open(endpoint: &str, timeout: u64, version: &ClientVersion) -> Result<(Docker, Arc<Said>), String> {
    let destination = Arc::new(Destination::parse(endpoint)?);
    let said = Arc::<Said>::default();
    let connector = Connector { destination, said: said.clone() };
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    let transport = move |request: BollardRequest| {
        let client = client.clone();
        async move { client.request(request).await.map_err(bollard::errors::Error::from) }
    };
    let docker = Docker::connect_with_custom_transport(transport, Some("http://docker"), timeout, version)
        .map_err(|e| e.to_string())?;
    Ok((docker, said))
}

/// Opens each connection as a new ssh process.
#[derive(Clone)]
struct Connector {
    destination: Arc<Destination>,
    said: Arc<Said>,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            let mut child = connector
                .destination
                .command()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                // Not in imgraph's process group: Ctrl-C stops the run, which then ends its connections.
                .process_group(0)
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
            let (Some(stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            connector.said.reading.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(keep_what_ssh_says(stderr, connector.said));
            tracing::debug!(host = connector.destination.host, "ssh connection to the Docker daemon opened");
            Ok(Stream { io: TokioIo::new(tokio::io::join(stdout, stdin)), _child: child })
        })
    }
}

/// Logs ssh's stderr and keeps its last line.
async fn keep_what_ssh_says(stderr: ChildStderr, said: Arc<Said>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(line, "ssh");
        let mut kept = crate::lock(&said.last_line);
        kept.clear();
        kept.extend(line.trim().chars().take(SAID_LIMIT));
    }
    said.reading.fetch_sub(1, Ordering::AcqRel);
}

/// One connection: the ssh process's stdout and stdin; the process ends with it.
struct Stream {
    io: TokioIo<Join<ChildStdout, ChildStdin>>,
    _child: Child,
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_as_the_docker_cli_reads_them() {
        let parse = |e| Destination::parse(e);
        let d = |user: Option<&str>, host: &str, port, socket: Option<&str>| Destination {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            socket: socket.map(str::to_owned),
        };
        assert_eq!(parse("ssh://arm.example"), Ok(d(None, "arm.example", None, None)));
        assert_eq!(parse("ssh://builder@arm.example:2222/"), Ok(d(Some("builder"), "arm.example", Some(2222), None)));
        assert_eq!(
            parse("ssh://[::1]:22/run/user/docker.sock"),
            Ok(d(None, "::1", Some(22), Some("/run/user/docker.sock")))
        );
        assert_eq!(parse("ssh://[fe80::1]"), Ok(d(None, "fe80::1", None, None)));
        for (bad, why) in [
            ("ssh://", "host name is empty"),
            ("ssh://@h", "user name is empty"),
            ("ssh://h:port", "`port` is not a port number"),
            ("ssh://h:99999", "`99999` is not a port number"),
            ("ssh://h:0", "`0` is not a port number"),
            ("ssh://-oProxyCommand=x", "host name"),
            ("ssh://u$(id)@h", "user name"),
            ("ssh://h;id", "host name"),
            ("ssh://u:secret@h", "a password cannot be given"),
            ("ssh://fe80::1", "IPv6 address in brackets"),
            ("ssh://[fe80::1", "without its `]`"),
            ("ssh://[h]:22", "not an IPv6 address"),
            ("tcp://h", "does not start with ssh://"),
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn the_command_is_the_docker_clis() {
        let command = |e| {
            let command = Destination::parse(e).unwrap().command();
            let std = command.as_std();
            std::iter::once(std.get_program())
                .chain(std.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            command("ssh://u@h:2222"),
            "ssh -o ConnectTimeout=30 -o BatchMode=yes -T -l u -p 2222 -- h docker system dial-stdio"
        );
        assert_eq!(
            command("ssh://h/run/it's.sock"),
            r"ssh -o ConnectTimeout=30 -o BatchMode=yes -T -- h docker --host 'unix:///run/it'\''s.sock' system dial-stdio"
        );
    }
}
