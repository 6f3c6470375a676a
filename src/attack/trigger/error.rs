//! Why a trigger attack could not run: one error for the whole attack, from the set-up
//! (labels, vocabulary, search examples) through the search (model, embedding graph,
//! checkpoint, trace) to the evaluation.

use super::checkpoint::CheckpointError;
use crate::model::ModelError;
use crate::model::embed::EmbedError;

/// Why a trigger attack could not run.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The classifier failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The search checkpoint could not be read or written, or belongs to another search.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The gradient trace could not be written.
    #[error("failed to write the gradient trace {}", path.display())]
    Trace {
        /// The trace file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The embedding-input graph failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A word of `init` is not a single vocabulary entry.
    #[error("trigger init {token:?} is not one token of the model's vocabulary")]
    InitToken {
        /// The word.
        token: String,
    },
    /// `init` has another number of tokens than the trigger's length.
    #[error("trigger init has {got} tokens, --length is {length}")]
    InitLength {
        /// Tokens in `init`.
        got: usize,
        /// The trigger's length, in tokens.
        length: usize,
    },
    /// The query budget cannot pay for one iteration of the search (#30 item 12): it would
    /// return the starting trigger after 0 iterations.
    #[error(
        "--budget-queries {budget}: one iteration of this search needs {minimum} model rows \
         ({validation} for the starting trigger's validation loss, {gradient} for one gradient \
         estimate, {batch} for the batch's loss, {validation} for the new trigger's validation \
         loss); give at least {minimum}, or fewer --directions or a smaller --search-batch"
    )]
    BudgetTooSmall {
        /// The budget given.
        budget: u64,
        /// The least budget that runs one iteration.
        minimum: u64,
        /// Rows of one validation loss.
        validation: u64,
        /// Rows of one gradient estimate.
        gradient: u64,
        /// Rows of one batch loss.
        batch: u64,
    },
    /// Too few search examples are left (or there is no search corpus); says why.
    #[error("no search examples: {0}")]
    NoExamples(String),
    /// Every vocabulary entry is excluded (special, subword, number or stop word).
    #[error("no candidate tokens are left after the exclusions")]
    EmptyVocabulary,
    /// A target or source label is not one of the model's.
    #[error("unknown {role} label {label:?}: the model's labels are {known:?}")]
    Label {
        /// `target` or `source`.
        role: &'static str,
        /// The label as given.
        label: String,
        /// The model's labels.
        known: Vec<String>,
    },
    /// The tokenizer does not wrap an input in exactly two special tokens (the ids it adds to
    /// an empty text).
    #[error(
        "the tokenizer does not wrap a sequence in exactly two special tokens ({0:?}); trigger placement needs [CLS] ... [SEP]"
    )]
    Specials(Vec<u32>),
    /// The search corpus has no label column.
    #[error("{path} has no label column; trigger search needs gold labels")]
    NoLabels {
        /// The search corpus.
        path: std::path::PathBuf,
    },
    /// The search corpus's labels do not match the model's.
    #[error(transparent)]
    Corpus(#[from] crate::data::corpus::CorpusError),
}
