//! One ONNX Runtime session, built, checked and fed the same way for every model head: the
//! session options, the padded feed, the input check and the output extraction that
//! [`crate::model::encoder::Encoder`] is made of.
//!
//! Why one module: the classifier, the coreference scorer (a classifier over marked spans),
//! the fill-mask model and the embedding-input twin of a classifier all take `input_ids`,
//! `attention_mask` and maybe `token_type_ids` as 2-d int64 tensors and return float32
//! `logits`; only the logits' rank and how they are read differ ([`crate::model::head`]). A
//! fix here (a padding rule, an input-type check, the accounting of padded tokens) reaches
//! every head at once.

use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{Tensor, TensorElementType, ValueType};

use crate::model::tokenize::TokenIds;
use crate::model::{ModelError, QueryStats};

/// Named input tensors for one forward pass.
pub(crate) type Feed = Vec<(
    std::borrow::Cow<'static, str>,
    ort::session::SessionInputValue<'static>,
)>;

/// A row of token ids with their segment (token type) ids.
pub(crate) trait TokenRow {
    fn ids(&self) -> &[u32];
    fn type_ids(&self) -> &[u32];
}

impl TokenRow for TokenIds {
    fn ids(&self) -> &[u32] {
        &self.ids
    }
    fn type_ids(&self) -> &[u32] {
        &self.type_ids
    }
}

/// Session options every graph robust runs shares: full graph optimisation, `threads` inside
/// each operator, one graph-level thread (batches are already large).
///
/// Worker threads sleep between operators instead of spinning (ONNX Runtime's default). A
/// spinning worker holds a core that, on a machine shared with other work, the thread doing
/// the next matrix multiply needs: on 2 cores under load, inference over 256 SST-2 sentences
/// took a median 9.6 s without spinning against 12.5 s with it (benches/compare).
pub(crate) fn session_builder(
    env: &ort::environment::Environment,
    threads: usize,
) -> ort::Result<ort::session::builder::SessionBuilder> {
    Ok(Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads.max(1))?
        .with_intra_op_spinning(false)?
        .with_inter_threads(1)?)
}

/// The int64 inputs (`input_ids`, `attention_mask`, and `token_type_ids` when the graph takes
/// them) for a batch padded to its own longest row, with the batch counted in `stats`. Every
/// graph that takes token ids is fed through here, so padding and its accounting are done one
/// way. Returns the feed and the padded width.
pub(crate) fn padded_feed<R: TokenRow + ?Sized>(
    rows: &[&R],
    uses_token_types: bool,
    stats: &mut QueryStats,
    path: &Path,
) -> Result<(Feed, usize), ModelError> {
    let width = rows.iter().map(|r| r.ids().len()).max().unwrap_or(0).max(1);
    let n = rows.len();
    let mut ids = vec![0i64; n * width];
    let mut mask = vec![0i64; n * width];
    let mut types = vec![0i64; n * width];
    for (r, row) in rows.iter().enumerate() {
        for (c, (&id, &ty)) in row.ids().iter().zip(row.type_ids()).enumerate() {
            ids[r * width + c] = i64::from(id);
            mask[r * width + c] = 1;
            types[r * width + c] = i64::from(ty);
        }
        stats.real_tokens += row.ids().len() as u64;
    }
    stats.padded_tokens += (n * width) as u64;
    stats.model_queries += n as u64;
    stats.batches += 1;
    let shape = [n, width];
    let mut feed: Feed = vec![
        ("input_ids".into(), tensor(shape, ids, path)?),
        ("attention_mask".into(), tensor(shape, mask, path)?),
    ];
    if uses_token_types {
        feed.push(("token_type_ids".into(), tensor(shape, types, path)?));
    }
    Ok((feed, width))
}

fn session_err(path: &Path) -> impl Fn(ort::Error) -> ModelError + '_ {
    move |source| ModelError::Session {
        path: path.to_path_buf(),
        source,
    }
}

/// A feed entry from a shape and its values.
pub(crate) fn tensor<T, const D: usize>(
    shape: [usize; D],
    values: Vec<T>,
    path: &Path,
) -> Result<ort::session::SessionInputValue<'static>, ModelError>
where
    T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static,
{
    Ok(Tensor::from_array((shape, values))
        .map_err(session_err(path))?
        .into())
}

/// Run one forward pass and hand the output named `output` (`logits`, or a sentence
/// encoder's `last_hidden_state`: its shape and values) to `read`, which checks the shape it
/// expects and keeps what it needs: a fill-mask batch's logits are too large to copy whole.
pub(crate) fn run_logits<T>(
    session: &mut Session,
    feed: Feed,
    path: &Path,
    kind: &'static str,
    output: &str,
    read: impl FnOnce(&[i64], &[f32]) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let outputs = session.run(feed).map_err(session_err(path))?;
    let value = outputs
        .get(output)
        .ok_or_else(|| ModelError::Incompatible {
            path: path.to_path_buf(),
            kind,
            message: format!("no output named {output}"),
        })?;
    let (dims, data) = value
        .try_extract_tensor::<f32>()
        .map_err(session_err(path))?;
    let dims: Vec<i64> = dims.iter().copied().collect();
    read(&dims, data)
}

/// Check that the graph takes `input_ids` and `attention_mask` (and maybe `token_type_ids`) as
/// 2-d int64 tensors, and `extra` inputs of any type (the embedding-input graph's embeddings).
/// Returns whether `token_type_ids` is an input.
pub(crate) fn check_inputs(
    session: &Session,
    path: &Path,
    kind: &'static str,
    extra: &[&str],
) -> Result<bool, ModelError> {
    let bad = |message: String| ModelError::Incompatible {
        path: path.to_path_buf(),
        kind,
        message,
    };
    let mut seen = Vec::new();
    for input in session.inputs() {
        let name = input.name();
        if extra.contains(&name) {
            continue;
        }
        if !matches!(name, "input_ids" | "attention_mask" | "token_type_ids") {
            return Err(bad(format!(
                "unexpected input {name:?}; a model takes input_ids, attention_mask and optionally token_type_ids"
            )));
        }
        match input.dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Int64,
                shape,
                ..
            } if shape.len() == 2 => {}
            other => {
                return Err(bad(format!(
                    "input {name:?} is {other}, expected a 2-d int64 tensor"
                )));
            }
        }
        seen.push(name.to_string());
    }
    for required in ["input_ids", "attention_mask"] {
        if !seen.iter().any(|s| s == required) {
            return Err(bad(format!(
                "missing input {required:?}; inputs are {seen:?}"
            )));
        }
    }
    Ok(seen.iter().any(|s| s == "token_type_ids"))
}

/// The declared shape of the float32 output named `output` (dynamic axes as -1).
pub(crate) fn logits_shape(
    session: &Session,
    path: &Path,
    kind: &'static str,
    output: &str,
) -> Result<Vec<i64>, ModelError> {
    let bad = |message: String| ModelError::Incompatible {
        path: path.to_path_buf(),
        kind,
        message,
    };
    let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let logits = session
        .outputs()
        .iter()
        .find(|o| o.name() == output)
        .ok_or_else(|| bad(format!("missing output {output:?}; outputs are {names:?}")))?;
    match logits.dtype() {
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape,
            ..
        } => Ok(shape.iter().copied().collect()),
        other => Err(bad(format!(
            "output {output:?} is {other}, expected float32"
        ))),
    }
}
