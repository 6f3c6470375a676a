//! Lexical resources read from files at run time: WordNet (synonyms, antonyms, base forms and
//! derivational links) for the word-substitution attacks and for propagating word lists;
//! opinion lexicons and a matcher that sees a word's inflections; and a word's semantic
//! orientation under a sentence encoder.

pub mod opinion;
pub mod polarity;
pub mod wordnet;
