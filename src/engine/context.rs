//! The build context: one walk of the image directory (after `.dockerignore`, with the rendered Dockerfile in place
//! of the directory's own), consumed both by the tar streamer and by the digest, so the two always agree.
//!
//! Symbolic links are sent as what they point to, file or directory, as docker-pkg's copy of the context does, as
//! long as they resolve inside the tree's root: a link that leaves the tree, dangles or loops is an error naming
//! it (unless `.dockerignore` leaves it out).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use walkdir::WalkDir;

use super::BuildError;
use super::dockerignore::Matcher;
use crate::files;

/// Where the rendered Dockerfile goes in the context, as docker-pkg writes `context/Dockerfile`.
pub const DOCKERFILE: &str = "Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";
/// Size of the chunks sent to the daemon; with [`CHANNEL_CHUNKS`] it bounds the memory a build context takes.
const CHUNK: usize = 64 * 1024;
/// How many chunks may wait for the daemon.
pub const CHANNEL_CHUNKS: usize = 8;

/// One context entry.
struct Entry<'a> {
    /// `/`-separated, relative to the context root.
    rel: &'a Path,
    /// Where the symbolic link this entry is reached through leads (canonical), when it is one.
    link_target: Option<&'a Path>,
    /// Permission bits, kept as they are on disk (the executable bit matters).
    mode: u32,
    data: Data<'a>,
}

enum Data<'a> {
    File {
        path: &'a Path,
        size: u64,
    },
    /// The rendered Dockerfile.
    Rendered(&'a [u8]),
    Dir,
}

fn context_error(path: &Path, err: impl std::fmt::Display) -> BuildError {
    BuildError::Context(format!("cannot read {}: {err}", path.display()))
}

/// Visits the rendered Dockerfile, then every entry of `dir` that `.dockerignore` keeps, in sorted order, links
/// followed. `root` is the tree's root, canonical: no link may lead out of it.
fn walk(
    root: &Path,
    dir: &Path,
    dockerfile: &str,
    visit: &mut dyn FnMut(&Entry<'_>) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    visit(&Entry {
        rel: Path::new(DOCKERFILE),
        link_target: None,
        mode: 0o644,
        data: Data::Rendered(dockerfile.as_bytes()),
    })?;
    let ignore_path = dir.join(DOCKERIGNORE);
    let ignore = match files::confined(root, &ignore_path).and_then(|p| files::read(&p, files::DOCKERIGNORE_LIMIT)) {
        Ok(bytes) => Some(
            Matcher::parse(&String::from_utf8_lossy(&bytes))
                .map_err(|e| BuildError::Context(format!("{}: {e}", ignore_path.display())))?,
        ),
        Err(e) if e.is_absent() => None,
        Err(e) => return Err(context_error(&ignore_path, e)),
    };
    let excluded = |rel: &Path| ignore.as_ref().is_some_and(|i| rel != Path::new(DOCKERIGNORE) && i.excludes(rel));
    let mut entries = WalkDir::new(dir).follow_links(true).sort_by_file_name().min_depth(1).into_iter();
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(dir);
                // A dangling or looping link that `.dockerignore` leaves out is never followed.
                if path.strip_prefix(dir).is_ok_and(&excluded) {
                    continue;
                }
                return Err(link_error(path, &e));
            }
        };
        let path = entry.path();
        let rel = path.strip_prefix(dir).map_err(|e| context_error(path, e))?;
        let file_type = entry.file_type();
        // The rendered Dockerfile replaces whatever the directory has under that name.
        if rel == Path::new(DOCKERFILE) {
            if file_type.is_dir() {
                entries.skip_current_dir();
            }
            continue;
        }
        // The CLI always sends `.dockerignore` (the daemon drops it if excluded).
        if excluded(rel) {
            if file_type.is_dir() && !ignore.as_ref().is_some_and(|i| i.may_reinclude_under(rel)) {
                entries.skip_current_dir();
            }
            continue;
        }
        let link_target = if entry.path_is_symlink() {
            let target = files::confined(root, path)
                .map_err(|e| BuildError::Context(format!("symbolic link {}: {e}", path.display())))?;
            Some(target)
        } else {
            None
        };
        let metadata = entry.metadata().map_err(|e| context_error(path, e))?;
        let data = if file_type.is_dir() {
            Data::Dir
        } else if file_type.is_file() {
            Data::File { path, size: metadata.len() }
        } else {
            // Sockets, FIFOs and devices have no place in an image build.
            continue;
        };
        visit(&Entry { rel, link_target: link_target.as_deref(), mode: metadata.permissions().mode() & 0o7777, data })?;
    }
    Ok(())
}

/// A walk error, worded for the link that caused it when one did.
fn link_error(path: &Path, error: &walkdir::Error) -> BuildError {
    if let Some(ancestor) = error.loop_ancestor() {
        return BuildError::Context(format!(
            "symbolic link {} loops: it leads back to {}",
            path.display(),
            ancestor.display()
        ));
    }
    if path.is_symlink() {
        return BuildError::Context(format!("symbolic link {} points to nothing: {error}", path.display()));
    }
    context_error(path, error)
}

/// Where the symbolic links of the context lead (canonical): files and directories outside the image
/// directory that a build sends all the same.
pub fn link_targets(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let mut targets = Vec::new();
    walk(root, dir, "", &mut |entry| {
        targets.extend(entry.link_target.map(Path::to_path_buf));
        Ok(())
    })?;
    Ok(targets)
}

/// The hex sha256 of the context a build would send.
pub fn digest(root: &Path, dir: &Path, dockerfile: &str) -> Result<String, BuildError> {
    let mut hasher = Sha256::new();
    walk(root, dir, dockerfile, &mut |entry| {
        // NUL-terminated fields (paths and link targets hold no NUL) and fixed-size hashes: unambiguous.
        let (kind, payload) = match &entry.data {
            Data::File { path, .. } => {
                let mut file = File::open(path).map_err(|e| context_error(path, e))?;
                let mut content = Sha256::new();
                io::copy(&mut file, &mut content).map_err(|e| context_error(path, e))?;
                (b'f', content.finalize().to_vec())
            }
            Data::Rendered(text) => (b'f', Sha256::digest(text).to_vec()),
            Data::Dir => (b'd', Vec::new()),
        };
        hasher.update([kind]);
        hasher.update(format!("{:o}\0", entry.mode));
        hasher.update(entry.rel.as_os_str().as_bytes());
        hasher.update([0]);
        hasher.update(&payload);
        hasher.update([0]);
        Ok(())
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// Writes the context as a deterministic tar into `tx`, in chunks, blocking while the daemon is slower than the
/// disk. Meant for a blocking thread. A context error is also sent down the channel, so the upload is aborted rather
/// than ending as a truncated archive. A closed channel (the daemon stopped reading) is not an error here: the build
/// stream reports why.
pub fn send(root: &Path, dir: &Path, dockerfile: &str, tx: mpsc::Sender<io::Result<Bytes>>) -> Result<(), BuildError> {
    let mut tar = tar::Builder::new(ChannelWriter { tx, buf: Vec::with_capacity(CHUNK), closed: false });
    let written = walk(root, dir, dockerfile, &mut |entry| append(&mut tar, entry)).and_then(|()| {
        tar.finish()
            .and_then(|()| tar.get_mut().flush())
            .map_err(|e| BuildError::Context(format!("cannot send the context: {e}")))
    });
    let writer = tar.get_mut();
    match written {
        Err(_) if writer.closed => Ok(()),
        Err(e) => {
            writer.abort(&e);
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}

/// Appends one entry with a deterministic header: owner root, a fixed mtime, the mode from disk.
fn append(tar: &mut tar::Builder<ChannelWriter>, entry: &Entry<'_>) -> Result<(), BuildError> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(tar::DETERMINISTIC_TIMESTAMP);
    let sent = match &entry.data {
        Data::File { path, size } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(*size);
            let file = File::open(path).map_err(|e| context_error(path, e))?;
            tar.append_data(&mut header, entry.rel, Exact { inner: file.take(*size), remaining: *size })
        }
        Data::Rendered(text) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(text.len() as u64);
            tar.append_data(&mut header, entry.rel, *text)
        }
        Data::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, entry.rel, io::empty())
        }
    };
    sent.map_err(|e| BuildError::Context(format!("cannot send {}: {e}", entry.rel.display())))
}

/// Reads exactly the size announced in the tar header: a file that shrinks while being sent would otherwise
/// corrupt the archive (one that grows is cut by `take`).
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being sent"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A `Write` into a bounded channel: full chunks are sent, blocking while the channel is full.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    /// The receiver is gone: the daemon stopped reading.
    closed: bool,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading the context"));
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(chunk.into())).map_err(|_| {
            self.closed = true;
            io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading the context")
        })
    }

    /// Fails the upload, so the daemon never sees a truncated archive as complete.
    fn abort(&mut self, error: &BuildError) {
        // Nothing to do if the receiver is gone already.
        let _ = self.tx.blocking_send(Err(io::Error::other(error.to_string())));
        self.closed = true;
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() >= CHUNK {
            self.send_buffer()?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() { Ok(()) } else { self.send_buffer() }
    }
}
