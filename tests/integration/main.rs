//! robust's integration tests: one binary (as in ripgrep), helpers in `util`, and tests that
//! run the real CLI and the real default model on real data.

mod attacks;
mod cli_errors;
mod cloze;
mod coref;
mod default_model;
mod docs;
mod embedding_graph;
mod engine;
mod families;
mod installed;
mod parameters;
mod plugin;
mod properties;
mod reliability;
mod replay;
mod report;
mod sharding;
mod trigger_exclusion;
mod util;
mod word_attacks;
