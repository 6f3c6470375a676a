//! Where a corpus's bytes come from (#30 items 7-8): a regular file is opened as often as its
//! readers need (a first pass that checks it whole, then the blocks of the attack); anything
//! else (a FIFO, `<(...)`, `/dev/stdin`, `-` for standard input, a character device) can be
//! read only once, so it is copied once into an unnamed temporary file (removed by the system
//! when the process ends), checking line lengths as it goes, and every later open of the same
//! path reads that copy. No line may be longer than [`MAX_LINE_BYTES`]: `/dev/zero` as a corpus
//! fails after 1 MiB, naming line 1, instead of growing memory without bound.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The longest line (for CSV, record) a corpus may hold, in bytes: a hundred times the longest
/// sentence of any corpus shipped or tested (SST-2's longest is under 300 bytes, GAP's under
/// 3 KB), small enough that a file without line breaks fails fast with bounded memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A line over [`MAX_LINE_BYTES`], found while copying a corpus that can be read only once;
/// carried as the payload of an [`std::io::ErrorKind::InvalidData`] error.
#[derive(Debug, thiserror::Error)]
#[error("line {line} is longer than {MAX_LINE_BYTES} bytes (no line break within 1 MiB)")]
pub struct LineTooLong {
    /// The 1-based line.
    pub line: usize,
}

impl LineTooLong {
    /// The line too long that `err` reports, if that is what it is.
    pub fn of(err: &std::io::Error) -> Option<usize> {
        err.get_ref()
            .and_then(|e| e.downcast_ref::<LineTooLong>())
            .map(|e| e.line)
    }
}

/// Copies of the corpora that can be read only once, by the path they were read from.
static SPOOLS: Mutex<BTreeMap<PathBuf, Arc<File>>> = Mutex::new(BTreeMap::new());

/// A corpus opened for reading from its start.
pub struct Source {
    inner: Inner,
}

enum Inner {
    File(File),
    /// A shared copy, read at this reader's own offset.
    Spool {
        file: Arc<File>,
        pos: u64,
    },
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            Inner::File(f) => f.read(buf),
            Inner::Spool { file, pos } => {
                use std::os::unix::fs::FileExt;
                let n = file.read_at(buf, *pos)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }
}

/// Whether `path` means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Open `path` (`-`: standard input) to be read from its start; see the module docs.
pub fn open(path: &Path) -> std::io::Result<Source> {
    if !is_stdin(path) && std::fs::metadata(path)?.is_file() {
        return Ok(Source {
            inner: Inner::File(File::open(path)?),
        });
    }
    let mut spools = SPOOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let file = match spools.get(path) {
        Some(file) => file.clone(),
        None => {
            let file = Arc::new(spool(path)?);
            spools.insert(path.to_path_buf(), file.clone());
            file
        }
    };
    Ok(Source {
        inner: Inner::Spool { file, pos: 0 },
    })
}

/// Read `path` whole, through [`open`].
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Copy what `path` gives into an unnamed temporary file, refusing a line over the limit.
fn spool(path: &Path) -> std::io::Result<File> {
    let mut input: Box<dyn Read> = if is_stdin(path) {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let mut out = tempfile::tempfile()?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut line, mut run) = (1usize, 0usize);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut rest = &buf[..n];
        loop {
            let (len, newline) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (rest.len(), false),
            };
            run += len;
            if run > MAX_LINE_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    LineTooLong { line },
                ));
            }
            if !newline {
                break;
            }
            run = 0;
            line += 1;
            rest = &rest[len + 1..];
        }
        out.write_all(&buf[..n])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// #30 item 7: a FIFO is read once, and opened again it gives the same bytes.
    #[test]
    fn a_fifo_is_read_once_and_reopened_from_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("c.tsv");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b"sentence\tlabel\na\t1\n").unwrap())
        };
        assert_eq!(read(&fifo).unwrap(), b"sentence\tlabel\na\t1\n");
        writer.join().unwrap();
        assert_eq!(read(&fifo).unwrap(), b"sentence\tlabel\na\t1\n");
    }

    /// #30 item 8: a never-ending line fails after the limit, naming its line.
    #[test]
    fn dev_zero_fails_at_the_line_limit() {
        let err = read(Path::new("/dev/zero")).expect_err("refused");
        assert_eq!(LineTooLong::of(&err), Some(1), "{err}");
    }
}
