//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`, so nothing is linked at build time and no binary is
//! downloaded by a build script: the library is found at run time. `ort::init()` would panic
//! when it is missing, so the path is resolved here first and every failure becomes a
//! [`RuntimeError`] that tells the user the one command that fixes it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;

/// Where the project's setup script puts its copy of the library, relative to the repository.
pub(crate) const SETUP_DIR: &str = ".ort";
const LIB_NAME: &str = "libonnxruntime.so";
const HOW_TO_GET: &str = "`pip install onnxruntime` (robust looks in python3's site-packages), or pass \
     --ort-lib PATH / set ORT_DYLIB_PATH, or run `./scripts/setup` in a robust checkout";

/// Why the ONNX Runtime library could not be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The path named by `--ort-lib` or `ORT_DYLIB_PATH` is not a file.
    #[error("onnx runtime library {path} (from {origin}) does not exist")]
    Missing {
        /// The path given.
        path: PathBuf,
        /// Where it was given: `--ort-lib` or `ORT_DYLIB_PATH`.
        origin: &'static str,
    },
    /// No library was named and none was found in the usual places.
    #[error("onnx runtime library not found; {HOW_TO_GET}")]
    NotFound,
    /// The library was found but could not be loaded.
    #[error("failed to load onnx runtime from {path}: {message}")]
    Load {
        /// The library file.
        path: PathBuf,
        /// The loader's error.
        message: String,
    },
    /// The library loaded but its environment could not be created.
    #[error("failed to create the onnx runtime environment")]
    Environment(#[source] ort::Error),
}

/// How the library path was chosen, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `--ort-lib`.
    Flag,
    /// `ORT_DYLIB_PATH`.
    EnvVar,
    /// The setup script's copy in `.ort/`.
    Setup,
    /// A pip-installed `onnxruntime` package.
    PythonPackage,
}

impl Origin {
    fn describe(self) -> &'static str {
        match self {
            Origin::Flag => "--ort-lib",
            Origin::EnvVar => "ORT_DYLIB_PATH",
            Origin::Setup => "the setup script's copy",
            Origin::PythonPackage => "a pip-installed onnxruntime package",
        }
    }
}

/// Resolve the library: `--ort-lib`, then `ORT_DYLIB_PATH`, then the setup script's copy
/// (`.ort/` in the working directory or above the executable), then the `capi/` folder of a
/// pip-installed `onnxruntime`.
pub(crate) fn resolve_library(flag: Option<&Path>) -> Result<(PathBuf, Origin), RuntimeError> {
    if let Some(path) = flag {
        return existing(path.to_path_buf(), Origin::Flag);
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return existing(PathBuf::from(path), Origin::EnvVar);
    }
    for dir in setup_dirs() {
        let candidate = dir.join(LIB_NAME);
        if candidate.is_file() {
            return Ok((candidate, Origin::Setup));
        }
    }
    for dir in python_site_dirs() {
        if let Some(lib) = find_in_capi(&dir.join("onnxruntime").join("capi")) {
            return Ok((lib, Origin::PythonPackage));
        }
    }
    Err(RuntimeError::NotFound)
}

/// `.ort/` in the working directory, then in each folder above the running executable: a
/// binary built in a checkout (`target/release/robust`) finds the checkout's copy from
/// anywhere, and an installed one finds none and goes on to a pip-installed package. Not the
/// folder the binary was built in, which on a user's machine means nothing.
fn setup_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(SETUP_DIR)];
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).map(|d| d.join(SETUP_DIR)));
    }
    dirs
}

/// Where the library would be loaded from, and how it was found (`robust resources` shows
/// it), without loading it.
pub fn locate_library(flag: Option<&Path>) -> Result<(PathBuf, &'static str), RuntimeError> {
    resolve_library(flag).map(|(path, origin)| (path, origin.describe()))
}

fn existing(path: PathBuf, origin: Origin) -> Result<(PathBuf, Origin), RuntimeError> {
    if path.is_file() {
        Ok((path, origin))
    } else {
        Err(RuntimeError::Missing {
            path,
            origin: origin.describe(),
        })
    }
}

/// `libonnxruntime.so` or the versioned `libonnxruntime.so.1.N.M` that wheels ship.
fn find_in_capi(capi: &Path) -> Option<PathBuf> {
    let plain = capi.join(LIB_NAME);
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so."))
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

/// Site-packages folders of the active virtualenv and of `python3`, asked without importing
/// onnxruntime: the runtime never needs Python, this is only a place to look.
fn python_site_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV")
        && let Ok(entries) = std::fs::read_dir(Path::new(&venv).join("lib"))
    {
        dirs.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("site-packages")),
        );
    }
    let script =
        "import site,sys\nfor p in site.getsitepackages()+[site.getusersitepackages()]: print(p)";
    if let Ok(out) = Command::new("python3").args(["-c", script]).output()
        && out.status.success()
    {
        dirs.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(PathBuf::from),
        );
    }
    dirs
}

static ENVIRONMENT: OnceLock<(Environment, PathBuf)> = OnceLock::new();

/// The variable that stops the telemetry client of Microsoft's builds before it starts.
///
/// Those builds start the client when the environment is created and it writes
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime/` even when events are then disabled through
/// the API. The library does not set the variable itself: changing the environment while
/// other threads may read it is unsound, and a library cannot know the caller's threads. The
/// `robust` binary sets it first thing in `main` (unless the user set it); a program that uses
/// the library and wants nothing written under `HOME` sets `ORT_DISABLE_TELEMETRY=1` itself,
/// before it starts threads.
pub const TELEMETRY_VARIABLE: &str = "ORT_DISABLE_TELEMETRY";

/// Load the library once per process and return the shared environment. Later calls reuse it,
/// whatever path they name: ONNX Runtime cannot be loaded twice into one process. See
/// [`TELEMETRY_VARIABLE`] for what a caller sets first.
pub(crate) fn environment(flag: Option<&Path>) -> Result<&'static Environment, RuntimeError> {
    if let Some((env, _)) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let (path, origin) = resolve_library(flag)?;
    tracing::debug!(path = %path.display(), origin = origin.describe(), "loading onnx runtime");
    let builder = ort::init_from(&path).map_err(|e| RuntimeError::Load {
        path: path.clone(),
        message: e.to_string(),
    })?;
    // A CI tool writes only where it is asked to: no usage events, and (with them) no event
    // database under ~/.cache/Microsoft.
    let env = builder
        .with_name("robust")
        .with_telemetry(false)
        .build()
        .map_err(RuntimeError::Environment)?;
    Ok(&ENVIRONMENT.get_or_init(|| (env, path)).0)
}

/// Arenas glibc's malloc may keep (`M_ARENA_MAX`), see [`tune_malloc`].
pub const MALLOC_ARENAS: i32 = 2;
/// Allocations from this size up get pages of their own (`M_MMAP_THRESHOLD`), see
/// [`tune_malloc`].
pub const MALLOC_MMAP_THRESHOLD: i32 = 1 << 20;

/// Keep glibc's malloc from hoarding what a long run frees (elsewhere than glibc, nothing).
///
/// Why: glibc gives each thread that allocates an arena of its own, up to eight per core, and
/// an arena keeps the memory freed into it; and after a large block is freed it raises its
/// threshold for giving large blocks pages of their own (up to 32 MiB), so later large blocks
/// are cut from the heap, which fragments and does not shrink. ONNX Runtime's inference
/// threads each grow an arena, and on a long attack that, not robust's own data, is what rose
/// between 160k and 255k rows of the 1M-row shuffle (README, "Scale"). So: two arenas,
/// shared by every thread ([`MALLOC_ARENAS`]), and a fixed 1 MiB threshold
/// ([`MALLOC_MMAP_THRESHOLD`]), whose blocks go back to the system when freed. Measured on the
/// 10-sample shuffle of the default corpus: peak RSS 553 MiB untuned, 536 MiB with two arenas,
/// 528 MiB with both. No result depends on it. Call it first thing in `main`, before any
/// thread starts.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets tunables of the allocator; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
    }
}

/// The library path the process loaded, if it loaded one.
pub fn loaded_library() -> Option<&'static Path> {
    ENVIRONMENT.get().map(|(_, p)| p.as_path())
}
