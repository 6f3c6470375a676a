//! Person-name swaps: does the prediction depend on who the sentence is about?
//!
//! Balasubramanian et al. (2020, "What's in a Name?") showed that swapping one person's name for
//! another changes the predictions of BERT-family models, more so across gender and origin. A
//! sentiment label should not move when "Emily" becomes "Jamal", so each variant replaces the
//! names in a sentence and nothing else.
//!
//! Names come from a [`NameLexicon`] (`corpora/names.tsv`, built from Faker's person lists).
//! Finding them is the hard part, because many names are also words:
//!
//! - In mixed-case text a name must be written Capitalised exactly as in the lexicon (`Emily`,
//!   `Emily's`). Capitals alone do not make a name: sentence starts and titles capitalise words.
//! - SST-2 is lower-cased, and all-caps text carries no case either. In such caseless text only
//!   first names count on their own; a last name counts only right after a first name ("emily
//!   smith"), since so many surnames are words ("long", "young", "price").
//! - Either way, [`COMMON_WORD_NAMES`] lists names that are also common English words or titles
//!   ("grace", "mark", "frank", "oscar", "may", "white"). One of these counts only inside a full
//!   name (first name then last name) with a word not on the list ("Grace Kelly"), or, in
//!   mixed case, in a capitalised pair away from a sentence start ("... met Mark Green").
//!   Once a name is established in a sentence, its later mentions count too.
//! - After a gendered title (`Mr`, `Mrs.`, `Ms`, `Sir`…) a name is a surname, common word or not
//!   ("Mr. Green", "mr. burns"); a first name there is left alone, since "Mr. Rebecca" would
//!   swap the name and leave the title's gender behind.
//! - A name that is both a first and a last name ("Lee", "Jackson") is a surname right after a
//!   capitalised word the lexicon does not know ("Spike Lee", "Tim Allen"), and otherwise takes
//!   the role the lexicon lists it in more often.
//!
//! Every mention of one name (first or last) gets the same replacement within a variant, written
//! in the original's case (Capitalised, lower, UPPER) and keeping a possessive `'s`. Two
//! different names never get the same replacement, and a replacement never equals a name already
//! in the sentence or a common-word name.
//!
//! The targets: `SameGender` and `OtherGender` swap only first names whose gender the lexicon
//! knows and leave surnames alone, so the two differ only in the gender of the names drawn and
//! `SameGender` is the control for `OtherGender`; both draw from the name's own origin.
//! `OtherOrigin` moves every name (first and last) to one other origin per variant, keeping
//! gender, and away from every origin that lists the leading name. `Any` draws from the whole
//! lexicon.
//!
//! Only names change: pronouns and gendered nouns stay, so "Emily ... her" can become "Jamal
//! ... her". Under `OtherGender` part of a flip may be the model reacting to that mismatch
//! rather than to the name alone; `SameGender` variants have no mismatch, one more reason to
//! read the two side by side.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::words::{self, Case, Token};
use super::{Perturbation, Perturber, SkipReason};

/// Where the shipped lexicon lives, relative to the repository root.
pub const DEFAULT_LEXICON: &str = "corpora/names.tsv";

/// Draws per wanted sample before settling for fewer distinct variants.
const TRIES_PER_SAMPLE: usize = 10;

/// Names that are also common English words, titles or places (lower case). In caseless text
/// they would be read as names far more often wrongly than rightly, and even capitalised they
/// start sentences and titles ("Grace under pressure", "the Oscar race", "in May").
pub const COMMON_WORD_NAMES: &[&str] = &[
    "agate",
    "amber",
    "amble",
    "angel",
    "april",
    "arenas",
    "art",
    "aurora",
    "austin",
    "autumn",
    "bail",
    "baker",
    "ball",
    "bath",
    "bell",
    "berry",
    "bill",
    "bird",
    "bishop",
    "black",
    "blake",
    "booth",
    "brandy",
    "bravo",
    "brook",
    "brooke",
    "brooks",
    "brown",
    "burns",
    "caldera",
    "carol",
    "casanova",
    "chad",
    "chance",
    "char",
    "chase",
    "christian",
    "cook",
    "corona",
    "corral",
    "cox",
    "cross",
    "crystal",
    "dada",
    "dakota",
    "dale",
    "das",
    "dash",
    "date",
    "dawn",
    "day",
    "de",
    "dean",
    "deep",
    "destiny",
    "dev",
    "din",
    "divan",
    "doctor",
    "drew",
    "eta",
    "faith",
    "ford",
    "forum",
    "fox",
    "frank",
    "gala",
    "garde",
    "gene",
    "georgia",
    "gill",
    "gollum",
    "grace",
    "grant",
    "gray",
    "green",
    "guy",
    "hall",
    "harsh",
    "hart",
    "hazel",
    "heather",
    "hill",
    "holly",
    "hope",
    "hunt",
    "hunter",
    "iris",
    "israel",
    "ivy",
    "jack",
    "jade",
    "jay",
    "jesus",
    "jordan",
    "joy",
    "june",
    "king",
    "knight",
    "krishna",
    "lance",
    "lane",
    "long",
    "lucky",
    "margarita",
    "mark",
    "marsh",
    "marshall",
    "mason",
    "max",
    "may",
    "mercedes",
    "miles",
    "mills",
    "misty",
    "moss",
    "newton",
    "oba",
    "om",
    "oscar",
    "page",
    "pat",
    "porter",
    "price",
    "ray",
    "reed",
    "rice",
    "rich",
    "rose",
    "rosemary",
    "ruby",
    "salami",
    "sandy",
    "shepherd",
    "sherry",
    "stone",
    "sue",
    "summer",
    "sydney",
    "trinidad",
    "victoria",
    "virginia",
    "ward",
    "wells",
    "west",
    "white",
    "will",
    "wood",
    "woods",
    "young",
];

/// Why a name lexicon could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    /// The file could not be read.
    #[error("failed to read name lexicon {path}")]
    Io {
        /// The lexicon file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A row is malformed: wrong field count, a name that is not one Capitalised word of
    /// letters, an unknown gender or kind, a bad origin tag, or a duplicate.
    #[error("{file}:{line}: {problem}")]
    Line {
        /// The file as error messages name it.
        file: String,
        /// Line in the file (1-based, counting the header and comments).
        line: usize,
        /// What is wrong with the row.
        problem: String,
    },
    /// The file has no rows besides the header and comments.
    #[error("{file}: the name lexicon has no names")]
    Empty {
        /// The file as error messages name it.
        file: String,
    },
}

/// The gender the lexicon gives a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gender {
    /// A female first name.
    Female,
    /// A male first name.
    Male,
    /// Given to both, or a surname.
    Any,
}

impl Gender {
    /// The lexicon's spelling: `female`, `male` or `any`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Any => "any",
        }
    }

    fn other(self) -> Gender {
        match self {
            Gender::Female => Gender::Male,
            Gender::Male => Gender::Female,
            Gender::Any => Gender::Any,
        }
    }
}

/// Whether a name is a first (given) name or a last name (surname).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameKind {
    /// A given name.
    First,
    /// A surname.
    Last,
}

impl NameKind {
    /// The lexicon's spelling: `first` or `last`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NameKind::First => "first",
            NameKind::Last => "last",
        }
    }
}

/// One row of the lexicon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// As written in the lexicon: Capitalised.
    pub name: String,
    /// Female, male, or any (given to both, or a surname).
    pub gender: Gender,
    /// A locale tag such as `en_US` or `yo_NG`.
    pub origin: String,
    /// First or last name.
    pub kind: NameKind,
}

/// The names an entity swap finds and draws from.
#[derive(Debug, Clone)]
pub struct NameLexicon {
    entries: Vec<NameEntry>,
    /// Lower-cased name → indices into `entries`, in file order.
    by_lower: HashMap<String, Vec<usize>>,
    /// Origins in order of first appearance.
    origins: Vec<String>,
}

impl NameLexicon {
    /// Read and [parse](Self::parse) a lexicon file; errors name it by its path.
    pub fn from_path(path: &Path) -> Result<Self, LexiconError> {
        let text = std::fs::read_to_string(path).map_err(|source| LexiconError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parse the TSV text `name<TAB>gender<TAB>origin<TAB>kind`; an optional header row and
    /// `#` comments are skipped. `name_for_errors` is what error messages call the file.
    pub fn parse(name_for_errors: &str, text: &str) -> Result<Self, LexiconError> {
        let mut lexicon = NameLexicon {
            entries: Vec::new(),
            by_lower: HashMap::new(),
            origins: Vec::new(),
        };
        let mut seen = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let fail = |problem: String| LexiconError::Line {
                file: name_for_errors.to_string(),
                line: line_no,
                problem,
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            if lexicon.entries.is_empty() && fields.first() == Some(&"name") {
                continue;
            }
            let [name, gender, origin, kind] = fields[..] else {
                return Err(fail(format!(
                    "expected 4 tab-separated fields (name, gender, origin, kind), found {}",
                    fields.len()
                )));
            };
            let tokens = words::tokenize(name);
            let one_word =
                tokens.len() == 1 && tokens[0].is_word() && tokens[0].span() == (0..name.len());
            if !one_word || !name.chars().all(char::is_alphabetic) {
                return Err(fail(format!(
                    "name {name:?} is not a single word of letters"
                )));
            }
            if words::case_of(name) != Case::Capitalised || name.chars().count() < 2 {
                return Err(fail(format!("name {name:?} is not written Capitalised")));
            }
            let gender = match gender {
                "female" => Gender::Female,
                "male" => Gender::Male,
                "any" => Gender::Any,
                other => {
                    return Err(fail(format!(
                        "unknown gender {other:?}: expected female, male or any"
                    )));
                }
            };
            let kind = match kind {
                "first" => NameKind::First,
                "last" => NameKind::Last,
                other => {
                    return Err(fail(format!(
                        "unknown kind {other:?}: expected first or last"
                    )));
                }
            };
            let valid_origin = !origin.is_empty()
                && origin
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_origin {
                return Err(fail(format!(
                    "origin {origin:?} is not a locale tag like en_US"
                )));
            }
            if !seen.insert((name.to_string(), origin.to_string(), kind)) {
                return Err(fail(format!(
                    "{name} is listed twice as a {} name of {origin}",
                    kind.as_str()
                )));
            }
            if !lexicon.origins.iter().any(|o| o == origin) {
                lexicon.origins.push(origin.to_string());
            }
            lexicon
                .by_lower
                .entry(name.to_lowercase())
                .or_default()
                .push(lexicon.entries.len());
            lexicon.entries.push(NameEntry {
                name: name.to_string(),
                gender,
                origin: origin.to_string(),
                kind,
            });
        }
        if lexicon.entries.is_empty() {
            return Err(LexiconError::Empty {
                file: name_for_errors.to_string(),
            });
        }
        Ok(lexicon)
    }

    /// Every row, in file order (a name listed under several origins or kinds has a row each).
    pub fn entries(&self) -> &[NameEntry] {
        &self.entries
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no rows (never true of a parsed lexicon).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Origins in the order the file first lists them.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Entries for a name, in any case.
    pub fn lookup(&self, name: &str) -> impl Iterator<Item = &NameEntry> {
        self.by_lower
            .get(&name.to_lowercase())
            .into_iter()
            .flatten()
            .map(|&i| &self.entries[i])
    }

    /// The person names in `text`, left to right, by the rules in the module docs.
    pub fn mentions(&self, text: &str) -> Vec<Mention> {
        let tokens = words::tokenize(text);
        let caseless = text_is_caseless(text);
        let candidates: Vec<Option<Candidate>> = (0..tokens.len())
            .map(|i| self.candidate(text, &tokens, i, caseless))
            .collect();
        let sentence_start = sentence_starts(text, &tokens);

        let mut kinds: Vec<Option<NameKind>> = vec![None; tokens.len()];
        let mut i = 0;
        while i < tokens.len() {
            let pair = match (
                &candidates[i],
                candidates.get(i + 1).and_then(Option::as_ref),
            ) {
                (Some(a), Some(b)) if a.first && b.last && a.suffix.is_empty() => {
                    !a.common || !b.common || (!caseless && !sentence_start[i])
                }
                _ => false,
            };
            if pair {
                kinds[i] = Some(NameKind::First);
                kinds[i + 1] = Some(NameKind::Last);
                i += 2;
                continue;
            }
            if let Some(c) = &candidates[i] {
                kinds[i] = if after_title(text, &tokens, i) {
                    // "Mr. Green", "mr. burns": a surname, even a common-word one. A first
                    // name after a gendered title is left alone ("Mr. Rebecca" is no swap).
                    c.last.then_some(NameKind::Last)
                } else if c.common {
                    None
                } else if c.first && c.last {
                    // "Spike Lee", "Tim Allen": after a capitalised word the lexicon does not
                    // know, a name that can be either is the surname; otherwise the more usual
                    // role wins ("Jackson" is a surname in two origins, a first name in one).
                    let after_unknown = !caseless
                        && i > 0
                        && tokens[i - 1].is_word()
                        && candidates[i - 1].is_none()
                        && words::case_of(tokens[i - 1].text(text)) == Case::Capitalised;
                    if after_unknown || c.n_last > c.n_first {
                        Some(NameKind::Last)
                    } else {
                        Some(NameKind::First)
                    }
                } else if c.first {
                    Some(NameKind::First)
                } else if !caseless {
                    Some(NameKind::Last)
                } else {
                    None
                };
            }
            i += 1;
        }
        // A name established anywhere in the text counts at every mention, in the role it was
        // first found in ("Michael Jackson ... Jackson" keeps Jackson a surname).
        let mut established: HashMap<&str, NameKind> = HashMap::new();
        for (c, kind) in candidates.iter().zip(&kinds) {
            if let (Some(c), Some(kind)) = (c, kind) {
                established.entry(c.lower.as_str()).or_insert(*kind);
            }
        }
        let mut mentions = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let Some(c) = c else { continue };
            let Some(&kind) = established.get(c.lower.as_str()) else {
                continue;
            };
            let token = &tokens[i];
            mentions.push(Mention {
                range: token.start..token.end - c.suffix.len(),
                name: c.canonical.clone(),
                kind,
            });
        }
        mentions
    }

    fn candidate(
        &self,
        text: &str,
        tokens: &[Token],
        i: usize,
        caseless: bool,
    ) -> Option<Candidate> {
        let token = &tokens[i];
        if !token.is_word() {
            return None;
        }
        let raw = token.text(text);
        let (base, suffix) = split_possessive(raw);
        let case = words::case_of(base);
        let case_ok = if caseless {
            matches!(case, Case::Lower | Case::Upper)
        } else {
            case == Case::Capitalised
        };
        if !case_ok {
            return None;
        }
        let lower = base.to_lowercase();
        let entries = self.by_lower.get(&lower)?;
        let entries: Vec<&NameEntry> = entries.iter().map(|&e| &self.entries[e]).collect();
        // In mixed case the spelling must be the lexicon's exactly ("Emily", not "EMily").
        if !caseless && !entries.iter().any(|e| e.name == base) {
            return None;
        }
        let n_first = entries.iter().filter(|e| e.kind == NameKind::First).count();
        let n_last = entries.len() - n_first;
        Some(Candidate {
            first: n_first > 0,
            last: n_last > 0,
            n_first,
            n_last,
            common: COMMON_WORD_NAMES.contains(&lower.as_str()),
            canonical: entries[0].name.clone(),
            lower,
            suffix: suffix.to_string(),
        })
    }

    /// Where a name of this kind comes from: the first entry in file order, with the gender
    /// set to `Any` when the lexicon gives the name to both.
    fn source(&self, lower: &str, kind: NameKind) -> Option<(Gender, &str)> {
        let mut matching = self
            .by_lower
            .get(lower)?
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|e| e.kind == kind);
        let first = matching.next()?;
        let gender = if matching.all(|e| e.gender == first.gender) {
            first.gender
        } else {
            Gender::Any
        };
        Some((gender, first.origin.as_str()))
    }
}

/// A person-name mention found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// Byte range of the name itself, without a possessive `'s`.
    pub range: Range<usize>,
    /// The lexicon's spelling.
    pub name: String,
    /// The role the name plays here (a name can be both a first and a last name).
    pub kind: NameKind,
}

struct Candidate {
    first: bool,
    last: bool,
    /// How many lexicon entries list it as a first name, and as a last name.
    n_first: usize,
    n_last: usize,
    common: bool,
    canonical: String,
    lower: String,
    /// A possessive ending attached to the token (`'s`), kept as it is.
    suffix: String,
}

/// What names an [`EntitySwap`] draws replacements from (see the module docs).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SwapTarget {
    /// Another first name of the same gender and origin (the control for `OtherGender`).
    SameGender,
    /// A first name of the other gender, same origin.
    OtherGender,
    /// First and last names from one other origin, same gender.
    OtherOrigin,
    /// Any name of the same kind.
    Any,
}

/// The person-name swap perturber. Variants are grouped by the leading name's change:
/// `female->male` style for the gendered targets, origin to origin (`en_US->yo_NG`) otherwise.
#[derive(Debug, Clone)]
pub struct EntitySwap {
    /// The names to find and to draw replacements from.
    pub lexicon: Arc<NameLexicon>,
    /// Distinct variants wanted per input.
    pub samples: usize,
    /// Which names replacements are drawn from.
    pub target: SwapTarget,
}

/// One distinct name in a sentence and what is known about it.
struct Person {
    lower: String,
    kind: NameKind,
    gender: Gender,
    origin: String,
}

impl Perturber for EntitySwap {
    fn name(&self) -> &'static str {
        "entity-swap"
    }

    fn perturb(&self, text: &str, rng: &mut ChaCha8Rng) -> Result<Vec<Perturbation>, SkipReason> {
        let mentions = self.lexicon.mentions(text);
        let mut people: Vec<Person> = Vec::new();
        for m in &mentions {
            let lower = m.name.to_lowercase();
            if people.iter().any(|p| p.lower == lower && p.kind == m.kind) {
                continue;
            }
            let Some((gender, origin)) = self.lexicon.source(&lower, m.kind) else {
                continue;
            };
            people.push(Person {
                lower,
                kind: m.kind,
                gender,
                origin: origin.to_string(),
            });
        }
        let gendered = matches!(
            self.target,
            SwapTarget::SameGender | SwapTarget::OtherGender
        );
        if gendered {
            people.retain(|p| p.kind == NameKind::First && p.gender != Gender::Any);
        }
        if people.is_empty() {
            return Err(SkipReason::NoNames);
        }
        let taken: HashSet<String> = mentions.iter().map(|m| m.name.to_lowercase()).collect();

        let mut out: Vec<Perturbation> = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..self.samples.saturating_mul(TRIES_PER_SAMPLE) {
            if out.len() == self.samples {
                break;
            }
            let Some(p) = self.draw(text, &mentions, &people, &taken, rng) else {
                continue;
            };
            if seen.insert(p.text.clone()) {
                out.push(p);
            }
        }
        if out.is_empty() && self.samples > 0 {
            return Err(SkipReason::NoNames);
        }
        Ok(out)
    }
}

impl EntitySwap {
    /// One variant: a replacement for every person, then the text rewritten.
    fn draw(
        &self,
        text: &str,
        mentions: &[Mention],
        people: &[Person],
        taken: &HashSet<String>,
        rng: &mut ChaCha8Rng,
    ) -> Option<Perturbation> {
        let lexicon = &*self.lexicon;
        let target_origin = match self.target {
            SwapTarget::OtherOrigin => {
                // Away from every origin that lists the leading name, where there is one:
                // "Emily" is en_GB and en_US, and en_GB -> en_US would be no swap at all.
                let lead = &people[0];
                let home: Vec<&str> = lexicon
                    .lookup(&lead.lower)
                    .filter(|e| e.kind == lead.kind)
                    .map(|e| e.origin.as_str())
                    .collect();
                let mut others: Vec<&String> = lexicon
                    .origins
                    .iter()
                    .filter(|o| !home.contains(&o.as_str()))
                    .collect();
                if others.is_empty() {
                    others = lexicon
                        .origins
                        .iter()
                        .filter(|o| **o != lead.origin)
                        .collect();
                }
                Some(others.choose(rng)?.as_str())
            }
            _ => None,
        };
        let mut used: HashSet<String> = HashSet::new();
        // (person index, replacement entry)
        let mut chosen: Vec<(usize, &NameEntry)> = Vec::new();
        for (index, person) in people.iter().enumerate() {
            let (origin, gender) = match self.target {
                SwapTarget::SameGender => (Some(person.origin.as_str()), Some(person.gender)),
                SwapTarget::OtherGender => {
                    (Some(person.origin.as_str()), Some(person.gender.other()))
                }
                SwapTarget::OtherOrigin => (target_origin, Some(person.gender)),
                SwapTarget::Any => (None, None),
            };
            let pool: Vec<&NameEntry> = lexicon
                .entries
                .iter()
                .filter(|e| {
                    e.kind == person.kind
                        && origin.is_none_or(|o| e.origin == o)
                        && gender.is_none_or(|g| g == Gender::Any || e.gender == g)
                })
                .filter(|e| {
                    let lower = e.name.to_lowercase();
                    !taken.contains(&lower)
                        && !used.contains(&lower)
                        && !COMMON_WORD_NAMES.contains(&lower.as_str())
                })
                .collect();
            // The same name can be listed under several origins or genders; draw each name once.
            let mut names: Vec<&NameEntry> = Vec::new();
            for e in pool {
                if !names.iter().any(|n| n.name == e.name) {
                    names.push(e);
                }
            }
            let Some(&entry) = names.choose(rng) else {
                continue;
            };
            used.insert(entry.name.to_lowercase());
            chosen.push((index, entry));
        }
        let &(lead, lead_entry) = chosen.first()?;
        let lead_person = &people[lead];

        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for m in mentions {
            let lower = m.name.to_lowercase();
            let Some(&(_, entry)) = chosen
                .iter()
                .find(|(i, _)| people[*i].lower == lower && people[*i].kind == m.kind)
            else {
                continue;
            };
            let original = &text[m.range.clone()];
            edits.push((
                m.range.clone(),
                words::with_case(&entry.name, words::case_of(original)),
            ));
        }
        let detail = chosen
            .iter()
            .map(|(i, e)| format!("{}->{}", capitalised(&people[*i].lower), e.name))
            .collect::<Vec<_>>()
            .join(", ");
        let group = match self.target {
            SwapTarget::SameGender | SwapTarget::OtherGender => {
                format!(
                    "{}->{}",
                    lead_person.gender.as_str(),
                    lead_entry.gender.as_str()
                )
            }
            SwapTarget::OtherOrigin | SwapTarget::Any => {
                format!("{}->{}", lead_person.origin, lead_entry.origin)
            }
        };
        Some(Perturbation {
            text: words::splice(text, &mut edits),
            detail,
            group,
            edit: None,
        })
    }
}

fn capitalised(lower: &str) -> String {
    words::with_case(lower, Case::Capitalised)
}

/// Text with no upper-case letters, or none in lower case: case says nothing about names.
fn text_is_caseless(text: &str) -> bool {
    let has_upper = text.chars().any(char::is_uppercase);
    let has_lower = text.chars().any(char::is_lowercase);
    !(has_upper && has_lower)
}

/// Titles after which a name is a surname.
const TITLES: [&str; 9] = [
    "mr", "mrs", "ms", "miss", "mister", "sir", "lady", "lord", "madam",
];

/// Does a title ("Mr", "Mr.", "mrs .") come right before token `i`?
fn after_title(text: &str, tokens: &[Token], i: usize) -> bool {
    let title_at = |j: usize| {
        tokens[j].is_word() && TITLES.contains(&tokens[j].text(text).to_lowercase().as_str())
    };
    match i {
        0 => false,
        1 => title_at(0),
        _ => title_at(i - 1) || (tokens[i - 1].text(text) == "." && title_at(i - 2)),
    }
}

/// `Emily's` → (`Emily`, `'s`); anything else is its own base.
fn split_possessive(word: &str) -> (&str, &str) {
    for suffix in ["'s", "\u{2019}s", "'S", "\u{2019}S"] {
        if let Some(base) = word.strip_suffix(suffix)
            && !base.is_empty()
        {
            return (base, &word[base.len()..]);
        }
    }
    (word, "")
}

/// For each token, whether it is the first word of a sentence (no word since the text began or
/// since `.`, `!`, `?`, `:` or `;`).
fn sentence_starts(text: &str, tokens: &[Token]) -> Vec<bool> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut at_start = true;
    for t in tokens {
        out.push(at_start && t.is_word());
        if t.is_word() {
            at_start = false;
        } else if t
            .text(text)
            .chars()
            .any(|c| matches!(c, '.' | '!' | '?' | ':' | ';' | '…'))
        {
            at_start = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    const LEXICON: &str = "name\tgender\torigin\tkind
# a small lexicon for tests
Emily\tfemale\ten_US\tfirst
Sarah\tfemale\ten_US\tfirst
Anna\tfemale\ten_US\tfirst
Grace\tfemale\ten_US\tfirst
John\tmale\ten_US\tfirst
Michael\tmale\ten_US\tfirst
Mark\tmale\ten_US\tfirst
Jamal\tmale\ten_US\tfirst
Jordan\tany\ten_US\tfirst
Lee\tmale\ten_US\tfirst
Lee\tany\ten_US\tlast
Smith\tany\ten_US\tlast
Jones\tany\ten_US\tlast
Kelly\tany\ten_US\tlast
Jackson\tany\ten_US\tlast
Green\tany\ten_US\tlast
Ayodele\tfemale\tyo_NG\tfirst
Folake\tfemale\tyo_NG\tfirst
Adebowale\tmale\tyo_NG\tfirst
Abiodun\tmale\tyo_NG\tfirst
Adisa\tany\tyo_NG\tlast
Ojo\tany\tyo_NG\tlast
";

    fn lexicon() -> Arc<NameLexicon> {
        Arc::new(NameLexicon::parse("test.tsv", LEXICON).unwrap())
    }

    fn swap(target: SwapTarget, samples: usize) -> EntitySwap {
        EntitySwap {
            lexicon: lexicon(),
            samples,
            target,
        }
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn found(text: &str) -> Vec<(String, NameKind)> {
        lexicon()
            .mentions(text)
            .into_iter()
            .map(|m| (text[m.range].to_string(), m.kind))
            .collect()
    }

    fn names(list: &[(&str, NameKind)]) -> Vec<(String, NameKind)> {
        list.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    use NameKind::{First, Last};

    #[test]
    fn finds_names_in_mixed_case() {
        assert_eq!(
            found("Emily met John Smith, and Emily's dog liked Smith."),
            names(&[
                ("Emily", First),
                ("John", First),
                ("Smith", Last),
                ("Emily", First),
                ("Smith", Last)
            ])
        );
        assert_eq!(
            found("Michael Jackson sang; Jackson danced."),
            names(&[("Michael", First), ("Jackson", Last), ("Jackson", Last)])
        );
        assert_eq!(found("EMily and emily"), names(&[]));
    }

    #[test]
    fn common_word_names_need_a_full_name() {
        assert_eq!(found("Grace under pressure is rare."), names(&[]));
        assert_eq!(found("Mark my words: it works."), names(&[]));
        assert_eq!(found("It earned an Oscar and a Grace note."), names(&[]));
        assert_eq!(
            found("Grace Kelly was radiant."),
            names(&[("Grace", First), ("Kelly", Last)])
        );
        assert_eq!(
            found("We saw Mark Green today."),
            names(&[("Mark", First), ("Green", Last)])
        );
        assert_eq!(found("Mark Green was there."), names(&[]));
        // Once established, a later mention counts too.
        assert_eq!(
            found("Grace Kelly shines, and Grace is the reason."),
            names(&[("Grace", First), ("Kelly", Last), ("Grace", First)])
        );
    }

    #[test]
    fn titles_and_unknown_first_names_mark_surnames() {
        assert_eq!(
            found("Mr. Green and Mrs Kelly"),
            names(&[("Green", Last), ("Kelly", Last)])
        );
        assert_eq!(
            found("this time mr. green is trying"),
            names(&[("green", Last)])
        );
        // A first name after a gendered title is not swapped ("Mr. Sarah" would be no swap).
        assert_eq!(found("It might be Mr. John"), names(&[]));
        // Jackson is a surname in the lexicon more often than a first name; after an unknown
        // capitalised word it is a surname either way.
        assert_eq!(found("What Jackson did"), names(&[("Jackson", Last)]));
        assert_eq!(found("a Spike Lee joint"), names(&[("Lee", Last)]));
        assert_eq!(found("and Lee said"), names(&[("Lee", First)]));
    }

    #[test]
    fn finds_names_in_lower_cased_sst_text() {
        assert_eq!(
            found("emily 's performance is great ."),
            names(&[("emily", First)])
        );
        assert_eq!(
            found("john smith 's film is a mess ."),
            names(&[("john", First), ("smith", Last)])
        );
        assert_eq!(found("smith is great ."), names(&[]));
        assert_eq!(found("by the grace of god , a mark of green"), names(&[]));
        assert_eq!(
            found("grace kelly and her grace"),
            names(&[("grace", First), ("kelly", Last), ("grace", First)])
        );
        assert_eq!(found("EMILY IS GREAT"), names(&[("EMILY", First)]));
    }

    #[test]
    fn swaps_keep_case_possessives_and_everything_else() {
        let text = "Emily met John Smith, and Emily's dog liked Smith.";
        let out = swap(SwapTarget::Any, 1).perturb(text, &mut rng(7)).unwrap();
        let out = &out[0].text;
        let re = |s: &str| {
            words::tokenize(s)
                .into_iter()
                .map(|t| t.text(s).to_string())
                .collect::<Vec<_>>()
        };
        let (a, b) = (re(text), re(out));
        assert_eq!(a.len(), b.len());
        assert_ne!(b[0], "Emily");
        assert_eq!(b[6], format!("{}'s", b[0]));
        assert_eq!(b[3], b[9]);
        for i in [1, 4, 5, 7, 8, 10] {
            assert_eq!(a[i], b[i]);
        }
        let lower = swap(SwapTarget::SameGender, 1)
            .perturb("emily 's role", &mut rng(1))
            .unwrap();
        assert!(lower[0].text.ends_with(" 's role"));
        assert_eq!(lower[0].text, lower[0].text.to_lowercase());
        let upper = swap(SwapTarget::SameGender, 1)
            .perturb("EMILY ROCKS", &mut rng(1))
            .unwrap();
        assert_eq!(upper[0].text, upper[0].text.to_uppercase());
    }

    #[test]
    fn gender_swaps_change_only_gendered_first_names() {
        let lex = lexicon();
        let s = swap(SwapTarget::OtherGender, 3);
        let out = s.perturb("Emily Smith and Jordan", &mut rng(3)).unwrap();
        assert!(!out.is_empty());
        for p in &out {
            assert_eq!(p.group, "female->male");
            let first = p.text.split(' ').next().unwrap();
            let entry = lex.lookup(first).next().unwrap();
            assert_eq!(
                (entry.gender, entry.origin.as_str()),
                (Gender::Male, "en_US")
            );
            assert!(p.text.ends_with(" Smith and Jordan"), "{}", p.text);
            assert!(p.detail.starts_with("Emily->"));
        }
        let same = swap(SwapTarget::SameGender, 3)
            .perturb("Emily Smith", &mut rng(3))
            .unwrap();
        for p in &same {
            assert_eq!(p.group, "female->female");
            assert_ne!(p.text, "Emily Smith");
        }
        assert_eq!(
            s.perturb("Jordan Smith", &mut rng(0)),
            Err(SkipReason::NoNames)
        );
        assert_eq!(
            s.perturb("the film is great .", &mut rng(0)),
            Err(SkipReason::NoNames)
        );
    }

    #[test]
    fn origin_swaps_move_first_and_last_names() {
        let out = swap(SwapTarget::OtherOrigin, 2)
            .perturb("John Smith is great", &mut rng(5))
            .unwrap();
        let lex = lexicon();
        for p in &out {
            assert_eq!(p.group, "en_US->yo_NG");
            let w: Vec<&str> = p.text.split(' ').collect();
            let first = lex.lookup(w[0]).next().unwrap();
            let last = lex.lookup(w[1]).next().unwrap();
            assert_eq!(
                (first.gender, first.origin.as_str(), first.kind),
                (Gender::Male, "yo_NG", First)
            );
            assert_eq!((last.origin.as_str(), last.kind), ("yo_NG", Last));
        }
    }

    #[test]
    fn distinct_people_stay_distinct() {
        // Two of the four female names are taken and Grace is a common word, so one of Emily
        // and Sarah becomes Anna and the other stays; John and Michael take Jamal and Lee
        // between them. No two people ever merge.
        let text = "Emily and Sarah and John and Michael";
        for seed in 0..50 {
            let out = swap(SwapTarget::SameGender, 1)
                .perturb(text, &mut rng(seed))
                .unwrap();
            let w: Vec<&str> = out[0].text.split(" and ").collect();
            let unique: HashSet<&str> = w.iter().copied().collect();
            assert_eq!(unique.len(), 4, "{}", out[0].text);
            assert!(
                unique.contains("Anna") && unique.contains("Jamal"),
                "{}",
                out[0].text
            );
            assert!(!out[0].text.contains("Grace") && !out[0].text.contains("Mark"));
        }
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let bad = |text: &str| {
            NameLexicon::parse("names.tsv", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad("Emily\tfemale\ten_US\tfirst\nJohn\tmale\ten_US\n"),
            "names.tsv:2: expected 4 tab-separated fields (name, gender, origin, kind), found 3"
        );
        assert!(
            bad("name\tgender\torigin\tkind\nJohn\tman\ten_US\tfirst")
                .starts_with("names.tsv:2: unknown gender \"man\"")
        );
        assert!(bad("John\tmale\ten_US\tmiddle").starts_with("names.tsv:1: unknown kind"));
        assert!(bad("john\tmale\ten_US\tfirst").contains("not written Capitalised"));
        assert!(bad("Mary Ann\tfemale\ten_US\tfirst").contains("not a single word"));
        assert!(bad("John\tmale\t\tfirst").contains("origin"));
        assert!(
            bad("John\tmale\ten_US\tfirst\nJohn\tmale\ten_US\tfirst")
                .starts_with("names.tsv:2: John is listed twice")
        );
        assert_eq!(
            bad("name\tgender\torigin\tkind\n"),
            "names.tsv: the name lexicon has no names"
        );
        let missing = NameLexicon::from_path(Path::new("/nonexistent/names.tsv")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "failed to read name lexicon /nonexistent/names.tsv"
        );
    }

    #[test]
    fn shipped_lexicon_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_LEXICON);
        let lex = NameLexicon::from_path(&path).unwrap();
        assert!(lex.len() > 2000);
        for origin in ["en_US", "en_GB", "en_IN", "yo_NG", "es_MX"] {
            assert!(lex.origins().iter().any(|o| o == origin), "{origin}");
        }
        let swap = EntitySwap {
            lexicon: Arc::new(lex),
            samples: 3,
            target: SwapTarget::OtherOrigin,
        };
        let out = swap
            .perturb("emily 's performance is a revelation .", &mut rng(1))
            .unwrap();
        assert_eq!(out.len(), 3);
        assert!(
            out.iter()
                .all(|p| p.text.ends_with(" 's performance is a revelation ."))
        );
    }

    fn any_target() -> impl Strategy<Value = SwapTarget> {
        prop::sample::select(vec![
            SwapTarget::SameGender,
            SwapTarget::OtherGender,
            SwapTarget::OtherOrigin,
            SwapTarget::Any,
        ])
    }

    proptest! {
        #[test]
        fn swaps_are_consistent_and_touch_only_names(
            ws in proptest::collection::vec(prop::sample::select(vec![
                "Emily", "John", "Smith", "Jordan", "Ayodele", "Ojo", "Emily's", "Grace", "Kelly",
                "the", "film", "is", "great", "and", "met", ",", ".", "'s",
            ]), 1..14),
            lower in any::<bool>(),
            seed in any::<u64>(),
            target in any_target(),
        ) {
            let text = ws.join(" ");
            let text = if lower { text.to_lowercase() } else { text };
            let s = swap(target, 3);
            let a = s.perturb(&text, &mut rng(seed));
            prop_assert_eq!(&a, &s.perturb(&text, &mut rng(seed)));
            let Ok(out) = a else { return Ok(()) };
            let mentions: Vec<Range<usize>> = lexicon().mentions(&text).into_iter().map(|m| m.range).collect();
            let before = words::tokenize(&text);
            for p in &out {
                prop_assert_ne!(&p.text, &text);
                let after = words::tokenize(&p.text);
                prop_assert_eq!(before.len(), after.len());
                let mut map: HashMap<String, String> = HashMap::new();
                for (x, y) in before.iter().zip(&after) {
                    let (tx, ty) = (x.text(&text), y.text(&p.text));
                    let is_name = mentions.iter().any(|r| r.start == x.start);
                    if !is_name {
                        prop_assert_eq!(tx, ty);
                        continue;
                    }
                    let (bx, sx) = split_possessive(tx);
                    let (by, sy) = split_possessive(ty);
                    prop_assert_eq!(sx, sy);
                    let old = map.insert(bx.to_string(), by.to_string());
                    prop_assert!(old.is_none_or(|o| o == by), "{} mapped twice in {:?}", bx, p.text);
                }
                // Changed names are changed to something new, and two names never merge.
                let changed: Vec<(&String, &String)> = map.iter().filter(|(k, v)| k != v).collect();
                prop_assert!(!changed.is_empty());
                let targets: HashSet<&String> = map.values().collect();
                prop_assert_eq!(targets.len(), map.len());
            }
        }

        #[test]
        fn never_panics(s in ".*", seed in any::<u64>(), target in any_target()) {
            let _ = swap(target, 2).perturb(&s, &mut rng(seed));
        }
    }
}
