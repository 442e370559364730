//! Reading a tree's files defensively: regular files only (a FIFO would block forever, `/dev/zero` never
//! ends), each kind with a size limit far above what real trees hold, and never outside the tree's root, even
//! through symbolic links.
//!
//! The limits (documented in the README):
//!
//! | file | limit |
//! |---|---|
//! | `changelog` (only the top entry is read; the limit bounds how far) | [`CHANGELOG_LIMIT`] |
//! | `control` | [`CONTROL_LIMIT`] |
//! | `Dockerfile.template` and every included file | [`TEMPLATE_LIMIT`] |
//! | `.dockerignore` | [`DOCKERIGNORE_LIMIT`] |
//! | the config file | [`CONFIG_LIMIT`] |

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The longest real changelog (production-images) is about 60 KiB.
pub const CHANGELOG_LIMIT: u64 = 4 << 20;
/// Real control files hold a few hundred bytes.
pub const CONTROL_LIMIT: u64 = 1 << 20;
/// Real templates are a few KiB.
pub const TEMPLATE_LIMIT: u64 = 1 << 20;
pub const DOCKERIGNORE_LIMIT: u64 = 1 << 20;
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// A PEM bundle of every public CA is about 200 KiB.
pub const PEM_LIMIT: u64 = 4 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such file")]
    NotFound,
    #[error("not a regular file (it is {0})")]
    NotRegular(&'static str),
    #[error("larger than the limit of {}", size(*.0))]
    TooLarge(u64),
    #[error("it resolves to {}, outside the tree ({})", target.display(), root.display())]
    OutsideRoot { target: PathBuf, root: PathBuf },
    #[error("{0}")]
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => ReadError::NotFound,
            io::ErrorKind::FileTooLarge => {
                let limit = error.get_ref().and_then(|e| e.downcast_ref::<LimitReached>()).map_or(0, |l| l.0);
                ReadError::TooLarge(limit)
            }
            _ => ReadError::Io(error),
        }
    }
}

impl ReadError {
    /// A missing file (or a directory where a file was expected), which some callers treat as "absent".
    pub fn is_absent(&self) -> bool {
        matches!(self, ReadError::NotFound | ReadError::NotRegular("a directory"))
    }
}

/// `1 MiB`, `512 KiB`, `4 bytes`.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Opens `path` (following links) for reading, if it is a regular file: the open itself cannot block, since
/// it is non-blocking, and the type is checked on the opened file, so nothing can be swapped in between.
pub fn open(path: &Path, limit: u64) -> Result<Limited<File>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::from)?;
    let file_type = file.metadata().map_err(ReadError::from)?.file_type();
    if !file_type.is_file() {
        return Err(ReadError::NotRegular(kind(&file_type)));
    }
    Ok(Limited { inner: file, remaining: limit, limit })
}

/// The whole of `path`, a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    open(path, limit)?.read_to_end(&mut bytes).map_err(ReadError::from)?;
    Ok(bytes)
}

/// `path` resolved (links followed), if it stays inside `root` (itself already canonical).
pub fn confined(root: &Path, path: &Path) -> Result<PathBuf, ReadError> {
    let target = path.canonicalize().map_err(ReadError::from)?;
    if target.starts_with(root) { Ok(target) } else { Err(ReadError::OutsideRoot { target, root: root.to_owned() }) }
}

/// What a file that is not regular is, for messages.
pub fn kind(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// A reader that fails with [`io::ErrorKind::FileTooLarge`] past its limit, rather than stopping quietly.
#[derive(Debug)]
pub struct Limited<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

/// The payload of the error [`Limited`] returns.
#[derive(Debug, thiserror::Error)]
#[error("larger than the limit of {} bytes", .0)]
struct LimitReached(u64);

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // One byte more tells a file of exactly `limit` bytes from a larger one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(io::ErrorKind::FileTooLarge, LimitReached(self.limit))),
            };
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_within_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read(&path, 5).unwrap(), b"12345");
        assert!(matches!(read(&path, 4), Err(ReadError::TooLarge(4))));
        assert_eq!(read(&path, 4).unwrap_err().to_string(), "larger than the limit of 4 bytes");
        assert!(matches!(read(&dir.path().join("missing"), 5), Err(ReadError::NotFound)));
        assert!(matches!(read(dir.path(), 5), Err(ReadError::NotRegular("a directory"))));
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo only reads the NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        assert!(matches!(read(&fifo, 5), Err(ReadError::NotRegular("a FIFO"))));
        assert!(matches!(read(Path::new("/dev/zero"), 5), Err(ReadError::NotRegular("a character device"))));
    }

    #[test]
    fn links_must_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/file"), "x").unwrap();
        std::os::unix::fs::symlink("../a/file", root.join("a/inside")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/outside")).unwrap();
        assert_eq!(confined(&root, &root.join("a/inside")).unwrap(), root.join("a/file"));
        assert!(matches!(confined(&root, &root.join("a/outside")), Err(ReadError::OutsideRoot { .. })));
    }
}
