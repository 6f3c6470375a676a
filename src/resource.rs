//! The files a run reads that the user need not give: the name lexicon, the name-frequency
//! table and the sentiment-word exclusion list.
//!
//! Why one resolver: robust runs as an installed binary, from any directory, on a user's own
//! model — with no repository beside it. So every default resource is compiled into the binary
//! (they are small: 190 KB together, each with its licence in `corpora/`), and a user can still
//! put a newer copy in front of it without rebuilding. One function, [`find`], decides where a
//! resource comes from, in this order:
//!
//! 1. the path given by a recipe key or flag (`names`, `name_frequency`, `exclude`);
//! 2. `$ROBUST_DATA_DIR/<file name>`, when the variable is set;
//! 3. the per-user data directory, `$XDG_DATA_HOME/robust/<file name>` (by default
//!    `~/.local/share/robust/`);
//! 4. the copy compiled into the binary.
//!
//! A compiled-in copy is recorded under its repository path (`corpora/names.tsv`), so a run's
//! parameters and `trigger.json` read the same wherever the binary runs; a file found in a
//! folder is recorded under its own path. The environment is read, never written.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The environment variable naming a folder of resources that comes before the data directory.
pub const DATA_DIR_VAR: &str = "ROBUST_DATA_DIR";

/// A resource robust can find on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Person names by gender and origin, for entity swaps (`corpora/names.tsv`, from Faker, MIT).
    Names,
    /// US-census name frequencies, for the coreference swap's breakdown
    /// (`corpora/name-frequency.tsv`, from the `names` package, MIT).
    NameFrequency,
    /// Opinion words kept out of triggers on sentiment models (`corpora/sentiment-words.txt`,
    /// from VADER (MIT), AFINN-en-165 (ODbL 1.0) and Pattern (MIT)).
    SentimentWords,
    /// Words the word and character attacks never change (`corpora/stop-words.txt`, NLTK's
    /// English stop words as TextAttack 0.3.11 uses them, distributed with NLTK, Apache-2.0).
    StopWords,
}

impl Resource {
    /// Every resource, in the order `robust resources` lists them.
    pub const ALL: [Resource; 4] = [
        Resource::Names,
        Resource::NameFrequency,
        Resource::SentimentWords,
        Resource::StopWords,
    ];

    /// Where the resource lives in the repository, and the name it is recorded under when the
    /// compiled-in copy is used.
    pub fn repo_path(self) -> &'static str {
        match self {
            Resource::Names => "corpora/names.tsv",
            Resource::NameFrequency => "corpora/name-frequency.tsv",
            Resource::SentimentWords => "corpora/sentiment-words.txt",
            Resource::StopWords => "corpora/stop-words.txt",
        }
    }

    /// The file name looked for in `$ROBUST_DATA_DIR` and the data directory.
    pub fn file_name(self) -> &'static str {
        self.repo_path().rsplit('/').next().unwrap_or_default()
    }

    /// The recipe key (and flag) that names another file.
    pub fn key(self) -> &'static str {
        match self {
            Resource::Names => "names",
            Resource::NameFrequency => "name_frequency",
            Resource::SentimentWords => "exclude",
            Resource::StopWords => "stop_words",
        }
    }

    /// The licence of the compiled-in copy's data.
    pub fn license(self) -> &'static str {
        match self {
            Resource::Names => "MIT (Faker)",
            Resource::NameFrequency => "MIT (names)",
            Resource::SentimentWords => "ODbL 1.0 (AFINN), MIT (VADER, Pattern)",
            Resource::StopWords => "NLTK's list, distributed with NLTK (Apache-2.0)",
        }
    }

    /// The bytes compiled into the binary.
    pub fn built_in(self) -> &'static [u8] {
        match self {
            Resource::Names => include_bytes!("../corpora/names.tsv"),
            Resource::NameFrequency => include_bytes!("../corpora/name-frequency.tsv"),
            Resource::SentimentWords => include_bytes!("../corpora/sentiment-words.txt"),
            Resource::StopWords => include_bytes!("../corpora/stop-words.txt"),
        }
    }
}

/// Where a resource was found, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A path given by a recipe key or flag.
    Given,
    /// `$ROBUST_DATA_DIR`.
    EnvVar,
    /// The per-user data directory.
    DataDir,
    /// The copy compiled into the binary.
    BuiltIn,
}

impl Origin {
    /// How `robust resources` and error messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Given => "given path",
            Origin::EnvVar => DATA_DIR_VAR,
            Origin::DataDir => "data directory",
            Origin::BuiltIn => "built in",
        }
    }
}

/// A resource and where it came from.
#[derive(Debug, Clone)]
pub struct Found {
    /// Which resource.
    pub resource: Resource,
    /// Where it was found.
    pub origin: Origin,
    /// The file read, or the repository path of the compiled-in copy.
    pub path: PathBuf,
    /// Its contents.
    pub bytes: Cow<'static, [u8]>,
}

impl Found {
    /// The contents as text; `path` names the file in the error.
    pub fn text(&self) -> Result<&str, ResourceError> {
        std::str::from_utf8(&self.bytes).map_err(|e| ResourceError::NotUtf8 {
            path: self.path.clone(),
            valid_up_to: e.valid_up_to(),
        })
    }

    /// sha256 of the contents, lower-case hex.
    pub fn sha256(&self) -> String {
        crate::hash::sha256_bytes(&self.bytes)
    }
}

/// Why a resource could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// A file named by a key, flag or folder could not be read.
    #[error("failed to read {path} ({origin})")]
    Read {
        /// The file.
        path: PathBuf,
        /// How it was named.
        origin: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{path} is not valid UTF-8 (from byte {valid_up_to})")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
}

/// The folders looked in before the compiled-in copy, in order, with their origin. A folder
/// that does not exist is listed too (`robust resources` shows where a copy would go).
pub fn search_dirs() -> Vec<(Origin, PathBuf)> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(DATA_DIR_VAR).filter(|d| !d.is_empty()) {
        dirs.push((Origin::EnvVar, PathBuf::from(dir)));
    }
    if let Some(dir) = data_dir() {
        dirs.push((Origin::DataDir, dir));
    }
    dirs
}

/// `$XDG_DATA_HOME/robust`, else `$HOME/.local/share/robust` (the XDG base-directory default).
pub fn data_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_DATA_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/share"))
        })
        .map(|d| d.join("robust"))
}

/// Find a resource: the given path, else the first search folder holding its file name, else
/// the compiled-in copy. A given or found file that cannot be read is an error, never a silent
/// fall-back to another copy.
pub fn find(resource: Resource, given: Option<&Path>) -> Result<Found, ResourceError> {
    if let Some(path) = given {
        return read(resource, Origin::Given, path.to_path_buf());
    }
    for (origin, dir) in search_dirs() {
        let candidate = dir.join(resource.file_name());
        if candidate.exists() {
            return read(resource, origin, candidate);
        }
    }
    Ok(Found {
        resource,
        origin: Origin::BuiltIn,
        path: PathBuf::from(resource.repo_path()),
        bytes: Cow::Borrowed(resource.built_in()),
    })
}

fn read(resource: Resource, origin: Origin, path: PathBuf) -> Result<Found, ResourceError> {
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Found {
            resource,
            origin,
            path,
            bytes: Cow::Owned(bytes),
        }),
        Err(source) => Err(ResourceError::Read {
            path,
            origin: origin.describe(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_copies_are_the_repository_files() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for r in Resource::ALL {
            let on_disk = std::fs::read(repo.join(r.repo_path())).unwrap();
            assert_eq!(
                on_disk,
                r.built_in(),
                "{} differs from its compiled-in copy",
                r.repo_path()
            );
            assert_eq!(Path::new(r.repo_path()).file_name().unwrap(), r.file_name());
        }
    }

    #[test]
    fn a_given_path_comes_first_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.tsv");
        std::fs::write(&file, "x").unwrap();
        let found = find(Resource::Names, Some(&file)).unwrap();
        assert_eq!((found.origin, &*found.bytes), (Origin::Given, &b"x"[..]));
        let missing = dir.path().join("absent.tsv");
        let err = find(Resource::Names, Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("absent.tsv"), "{err}");
    }

    #[test]
    fn the_compiled_in_copy_is_recorded_under_its_repository_path() {
        // Only when nothing in the search folders shadows it (a developer's own data
        // directory would).
        if search_dirs()
            .iter()
            .any(|(_, d)| d.join(Resource::SentimentWords.file_name()).exists())
        {
            return;
        }
        let found = find(Resource::SentimentWords, None).unwrap();
        assert_eq!(found.origin, Origin::BuiltIn);
        assert_eq!(found.path, Path::new("corpora/sentiment-words.txt"));
        assert!(found.text().unwrap().lines().count() > 8000);
    }
}
