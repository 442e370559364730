//! `ssh://[USER@]HOST[:PORT][/SOCKET]` Docker endpoints, reached as the Docker CLI reaches them: each connection
//! is an `ssh … HOST docker system dial-stdio` process, so the user's ssh configuration, keys, agent and known
//! hosts apply, and the Engine API travels over that process's standard input and output.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, BufReader, Join};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// What ssh last wrote on stderr (its own errors, and the remote `docker`'s), for the error that names the host.
pub(super) type Said = Arc<Mutex<String>>;

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
    pub(super) fn parse(endpoint: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("`{endpoint}` is not an ssh:// Docker endpoint: {why}");
        let rest = endpoint.strip_prefix("ssh://").ok_or_else(|| invalid("it does not start with ssh://"))?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (user, address) = match authority.rsplit_once('@') {
            Some((user, address)) if !user.is_empty() => (Some(user.to_owned()), address),
            Some(_) => return Err(invalid("the user name is empty")),
            None => (None, authority),
        };
        // `[v6]:port`, `[v6]`, `name:port`, `name`.
        let (host, port) = match address.rfind(':') {
            Some(i) if !address[i..].contains(']') => {
                let port = address[i + 1..].parse().map_err(|_| invalid("the port is not a number"))?;
                (&address[..i], Some(port))
            }
            _ => (address, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.starts_with('-') {
            return Err(invalid("no host name"));
        }
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

/// A client for `endpoint`, not yet contacted, and what ssh says on stderr.
pub(super) fn open(endpoint: &str, timeout: u64, version: &ClientVersion) -> Result<(Docker, Said), String> {
    let destination = Arc::new(Destination::parse(endpoint)?);
    let said = Said::default();
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
    said: Said,
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
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
            let (Some(stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            tokio::spawn(keep_what_ssh_says(stderr, connector.said));
            tracing::debug!(host = connector.destination.host, "ssh connection to the Docker daemon opened");
            Ok(Stream { io: TokioIo::new(tokio::io::join(stdout, stdin)), _child: child })
        })
    }
}

/// Logs ssh's stderr and keeps its tail.
async fn keep_what_ssh_says(stderr: ChildStderr, said: Said) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(line, "ssh");
        let mut kept = crate::lock(&said);
        kept.clear();
        kept.extend(line.trim().chars().take(SAID_LIMIT));
    }
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
        for bad in ["ssh://", "ssh://@h", "ssh://h:port", "ssh://-oProxyCommand=x", "tcp://h"] {
            assert!(parse(bad).is_err(), "{bad}");
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
