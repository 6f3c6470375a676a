//! Opinion lexicons, and a matcher that sees through inflection and WordNet's links.
//!
//! Why more than a word list: a trigger search finds the holes of a fixed list quickly, because
//! the words a list misses are exactly what moves a sentiment model. A list that has `lack` but
//! not `lacked`, `drain` but not `drains`, or `negligent` but not `negligence` lets the search
//! walk round it. So a word is matched when any of its base forms (WordNet's Morphy, every part
//! of speech) is listed or is a base form of a listed word, and, to a bounded depth, when it is
//! a WordNet derivational relative of one or (adjectives and adverbs) a synonym of its most
//! frequent sense.
//!
//! The lexicons are separate files, one per source ([`SOURCES`]), so that a match names the
//! lexicons behind it and a bench can hold one out to measure what the others miss
//! (`benches/trigger_leakage.py`). VADER, AFINN and Pattern may be shipped and are compiled
//! in; the others are fetched by `scripts/setup` (their licences are in
//! `corpora/opinion/README.md`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::wordnet::{Pos, WordNet};
use crate::attack::trigger::ExclusionList;

/// One opinion lexicon robust knows by name.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Its short name, the stem of its file (`corpora/opinion/<name>.txt`).
    pub name: &'static str,
    /// The licence of its data, as `corpora/opinion/README.md` records it.
    pub license: &'static str,
    /// The compiled-in copy, for the lexicons that may be shipped.
    built_in: Option<&'static [u8]>,
}

/// Every lexicon a default trigger search on a sentiment model excludes.
pub const SOURCES: [Source; 8] = [
    Source {
        name: "vader",
        license: "MIT",
        built_in: Some(include_bytes!("../../corpora/opinion/vader.txt")),
    },
    Source {
        name: "afinn",
        license: "ODbL 1.0",
        built_in: Some(include_bytes!("../../corpora/opinion/afinn.txt")),
    },
    Source {
        name: "pattern",
        license: "MIT",
        built_in: Some(include_bytes!("../../corpora/opinion/pattern.txt")),
    },
    Source {
        name: "huliu",
        license: "none given (citation asked); fetched, not shipped",
        built_in: None,
    },
    Source {
        name: "mpqa",
        license: "GPL; fetched, not shipped",
        built_in: None,
    },
    Source {
        name: "gi",
        license: "none given; fetched, not shipped",
        built_in: None,
    },
    Source {
        name: "nrc",
        license: "research use only; fetched, not shipped",
        built_in: None,
    },
    Source {
        name: "sentiwordnet",
        license: "CC BY-SA 3.0; fetched, not shipped",
        built_in: None,
    },
];

impl Source {
    /// The lexicon named `name`.
    pub fn named(name: &str) -> Option<&'static Source> {
        SOURCES.iter().find(|s| s.name == name)
    }

    /// Whether a copy is compiled in (else `scripts/setup` fetches it).
    pub fn is_built_in(&self) -> bool {
        self.built_in.is_some()
    }

    /// Where it lives in the repository, and the name a compiled-in copy is recorded under.
    pub fn repo_path(&self) -> PathBuf {
        PathBuf::from(format!("corpora/opinion/{}.txt", self.name))
    }

    /// The file it is read from: `$ROBUST_DATA_DIR/opinion/<name>.txt`, the data directory's,
    /// then the repository's `corpora/opinion/`; else the compiled-in copy, or `None` for a
    /// fetched lexicon that is nowhere.
    pub fn find(&self) -> std::io::Result<Option<FoundLexicon>> {
        let file = format!("{}.txt", self.name);
        let mut candidates: Vec<(&'static str, PathBuf)> = crate::resource::search_dirs()
            .into_iter()
            .map(|(origin, d)| (origin.describe(), d.join("opinion").join(&file)))
            .collect();
        candidates.push(("repository", self.repo_path()));
        for (origin, path) in candidates {
            if path.is_file() {
                let bytes = std::fs::read(&path)?;
                return Ok(Some(FoundLexicon {
                    path,
                    bytes,
                    origin,
                }));
            }
        }
        Ok(self.built_in.map(|b| FoundLexicon {
            path: self.repo_path(),
            bytes: b.to_vec(),
            origin: crate::resource::Origin::BuiltIn.describe(),
        }))
    }

    /// The folders [`find`](Self::find) looks in, for an error message.
    pub fn looked_in(&self) -> String {
        let mut dirs: Vec<String> = crate::resource::search_dirs()
            .into_iter()
            .map(|(_, d)| d.join("opinion").display().to_string())
            .collect();
        dirs.push("corpora/opinion".into());
        dirs.join(", ")
    }
}

/// A lexicon's file and where it was found.
pub struct FoundLexicon {
    /// The file read, or the repository path of the compiled-in copy.
    pub path: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
    /// `ROBUST_DATA_DIR`, `data directory`, `repository` or `built in`.
    pub origin: &'static str,
}

/// The name a list is known by in matches: its file stem (`vader` for
/// `corpora/opinion/vader.txt`).
pub fn list_name(list: &ExclusionList) -> String {
    list.path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| list.path.display().to_string())
}

/// How a word is matched by one lexicon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// The word itself, or one of its base forms, is listed or is a base form of a listed word.
    Form,
    /// It is a WordNet synonym or derivational relative (to the matcher's depth) of a listed
    /// word.
    Propagation,
}

/// Words matched against several lexicons by form and by WordNet propagation.
pub struct Matcher {
    names: Vec<String>,
    /// A listed word and each of its base forms → the lexicons (bits) that list it.
    forms: HashMap<String, u64>,
    /// A word reached by propagation (and its base forms) → the lexicons it was reached from.
    propagated: HashMap<String, u64>,
    wordnet: Option<Arc<WordNet>>,
    use_forms: bool,
    depth: usize,
}

/// At most this many lexicons in one matcher (a bit each).
pub const MAX_LISTS: usize = 64;

impl Matcher {
    /// A matcher over `lists` (at most [`MAX_LISTS`]). Without WordNet a word matches only as
    /// written; with it, through its base forms (unless `forms` is false), and through `depth`
    /// steps of synonyms and derivational links (0: none).
    pub fn new(
        lists: &[&ExclusionList],
        wordnet: Option<Arc<WordNet>>,
        forms: bool,
        depth: usize,
    ) -> Self {
        let names = lists.iter().map(|l| list_name(l)).collect();
        let mut matcher = Matcher {
            names,
            forms: HashMap::new(),
            propagated: HashMap::new(),
            wordnet,
            use_forms: forms,
            depth,
        };
        for (i, list) in lists.iter().enumerate().take(MAX_LISTS) {
            let bit = 1u64 << i;
            for word in &list.words {
                for form in matcher.base_forms(word) {
                    *matcher.forms.entry(form).or_default() |= bit;
                }
            }
        }
        if let Some(wordnet) = matcher.wordnet.clone()
            && depth > 0
        {
            matcher.propagate(&wordnet, lists.len().min(MAX_LISTS));
        }
        matcher
    }

    /// Breadth-first from every listed base form, `depth` steps of derivational links
    /// ("negligent" → "negligence") and, for adjectives and adverbs, the synonyms of the most
    /// frequent sense; single words only; each word reached keeps the lexicons it was reached
    /// from. Why so narrow: opinion lexicons list weakly evaluative words ("major", "tax"), and
    /// every synonym of every sense of those reached "coach" from "train" and "hospital" from
    /// "hospitalize" — a fifth of BERT's whole words, most of them neutral.
    fn propagate(&mut self, wordnet: &WordNet, lists: usize) {
        let mut frontier: HashMap<(String, Pos), u64> = HashMap::new();
        for (word, &bits) in &self.forms {
            for pos in Pos::ALL {
                if wordnet.contains(word, pos) {
                    *frontier.entry((word.clone(), pos)).or_default() |= bits;
                }
            }
        }
        let mut seen: HashSet<(String, Pos)> = frontier.keys().cloned().collect();
        let mask = if lists >= 64 {
            u64::MAX
        } else {
            (1u64 << lists) - 1
        };
        for _ in 0..self.depth {
            let mut next: HashMap<(String, Pos), u64> = HashMap::new();
            let mut from: Vec<(&(String, Pos), &u64)> = frontier.iter().collect();
            // A fixed order, so the result does not depend on the hash seed.
            from.sort();
            for ((lemma, pos), &bits) in from {
                let mut reached: Vec<(String, Pos)> = wordnet.derivations_with_pos(lemma, *pos);
                if matches!(pos, Pos::Adj | Pos::Adv) {
                    reached.extend(
                        wordnet
                            .first_sense_synonyms(lemma, *pos)
                            .into_iter()
                            .map(|w| (w, *pos)),
                    );
                }
                for (word, wpos) in reached {
                    if word.contains('_') {
                        continue;
                    }
                    *self.propagated.entry(word.clone()).or_default() |= bits & mask;
                    if seen.insert((word.clone(), wpos)) {
                        *next.entry((word, wpos)).or_default() |= bits;
                    }
                }
            }
            frontier = next;
        }
    }

    /// `word` lower-cased, then its base forms for every part of speech (with WordNet, when
    /// forms are matched).
    pub fn base_forms(&self, word: &str) -> Vec<String> {
        let word = word.to_lowercase();
        let mut out = vec![word.clone()];
        if let Some(wordnet) = self.wordnet.as_ref().filter(|_| self.use_forms) {
            for pos in Pos::ALL {
                for lemma in wordnet.lemmas(&word, pos) {
                    if !out.contains(&lemma) {
                        out.push(lemma);
                    }
                }
            }
        }
        out
    }

    /// The lexicons that match `word`, each with how; in list order.
    pub fn matches(&self, word: &str) -> Vec<(String, Via)> {
        let mut form = 0u64;
        let mut propagated = 0u64;
        for f in self.base_forms(word) {
            form |= self.forms.get(&f).copied().unwrap_or(0);
            propagated |= self.propagated.get(&f).copied().unwrap_or(0);
        }
        self.names
            .iter()
            .enumerate()
            .take(MAX_LISTS)
            .filter_map(|(i, name)| {
                let bit = 1u64 << i;
                if form & bit != 0 {
                    Some((name.clone(), Via::Form))
                } else if propagated & bit != 0 {
                    Some((name.clone(), Via::Propagation))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Whether any lexicon matches `word`.
    pub fn is_match(&self, word: &str) -> bool {
        self.base_forms(word)
            .iter()
            .any(|f| self.forms.contains_key(f) || self.propagated.contains_key(f))
    }

    /// Words reached by propagation alone (not listed in any form), for reports.
    pub fn propagated_only(&self) -> usize {
        self.propagated
            .keys()
            .filter(|w| !self.forms.contains_key(*w))
            .count()
    }

    /// The lexicons' names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The propagation depth.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Matcher, SOURCES, Via};
    use crate::attack::trigger::ExclusionList;

    fn list(name: &str, words: &[&str]) -> ExclusionList {
        ExclusionList {
            path: PathBuf::from(format!("{name}.txt")),
            sha256: String::new(),
            words: words.iter().map(|w| w.to_string()).collect(),
            size: words.len(),
        }
    }

    #[test]
    fn without_wordnet_only_the_word_as_written_matches() {
        let a = list("a", &["lack", "awful"]);
        let m = Matcher::new(&[&a], None, true, 1);
        assert_eq!(m.matches("Lack"), vec![("a".to_string(), Via::Form)]);
        assert!(m.matches("lacked").is_empty());
    }

    /// Issue 29: the list had `lack` but the triggers held `lacked` and `lacks`; `drains` got
    /// past `drain`, and `negligence` past `negligent`.
    #[test]
    fn base_forms_and_propagation_see_what_the_list_does_not_spell() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/wordnet");
        if !dir.join("index.noun").exists() {
            eprintln!(
                "skipped: no WordNet at {} (scripts/setup fetches it)",
                dir.display()
            );
            return;
        }
        let wordnet = std::sync::Arc::new(crate::lexicon::wordnet::WordNet::open(&dir).unwrap());
        let a = list("a", &["lack", "drain", "negligent"]);
        let b = list("b", &["lacking"]);
        let forms = Matcher::new(&[&a, &b], Some(wordnet.clone()), true, 0);
        let written = Matcher::new(&[&a, &b], Some(wordnet.clone()), false, 0);
        assert!(written.matches("lacked").is_empty());
        let form = |n: &str| (n.to_string(), Via::Form);
        assert_eq!(forms.matches("lacked"), vec![form("a"), form("b")]);
        assert_eq!(forms.matches("lacks"), vec![form("a"), form("b")]);
        assert_eq!(forms.matches("drains"), vec![form("a")]);
        assert!(forms.matches("negligence").is_empty());
        assert!(forms.matches("film").is_empty());
        let propagated = Matcher::new(&[&a, &b], Some(wordnet), true, 1);
        assert_eq!(
            propagated.matches("negligence"),
            vec![("a".to_string(), Via::Propagation)]
        );
        assert!(propagated.propagated_only() > 0);
        assert!(!propagated.is_match("film"));
    }

    #[test]
    fn the_shipped_lexicons_are_compiled_in_and_the_fetched_ones_are_not() {
        for s in SOURCES {
            let shipped = matches!(s.name, "vader" | "afinn" | "pattern");
            assert_eq!(s.built_in.is_some(), shipped, "{}", s.name);
        }
    }
}
