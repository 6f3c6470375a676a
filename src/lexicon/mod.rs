//! Lexical resources read from files at run time: WordNet (synonyms, antonyms, base forms and
//! derivational links) for the word-substitution attacks and for propagating word lists.

pub mod wordnet;
