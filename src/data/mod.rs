//! What attacks read: labelled corpora (whole or in blocks) and rows whose meaning lives in
//! character spans. Reading is kept apart from the model and the attacks so that every file a
//! user gives is checked in one place, with errors that name the file, line and problem.

pub mod corpus;
pub mod corpus_stream;
pub mod source;
pub mod spans;
