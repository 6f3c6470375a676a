//! Just enough of the ONNX file format to read a model's word-embedding matrix and to give
//! ONNX Runtime a variant of the graph that takes embeddings instead of token ids.
//!
//! ONNX Runtime computes no gradients, so attacks that need them (HotFlip triggers) estimate
//! them by finite differences in embedding space, which means feeding the model embeddings.
//! Rather than asking users for a second export, the graph is edited here: the `Gather` that
//! looks token ids up in the embedding table is removed and its output becomes a graph input.
//! The edit works on the protobuf wire format and copies every other byte through untouched,
//! so fields this module does not know about (and there are many in ONNX) survive.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Why a model file could not be read or rewritten.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The model file, or an external data file beside it, could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed ONNX protobuf (or lacks what this module reads).
    #[error("{path}: malformed protobuf: {message}")]
    Malformed {
        /// The model file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// No `Gather` of a float `[vocab, hidden]` table by `input_ids` was found.
    #[error("{path}: no word-embedding lookup found: {message}")]
    NoEmbedding {
        /// The model file.
        path: PathBuf,
        /// Why each candidate was rejected.
        message: String,
    },
    /// A tensor's external data reference is missing, out of range or outside the folder.
    #[error("{path}: external data of tensor {tensor:?}: {message}")]
    ExternalData {
        /// The model file.
        path: PathBuf,
        /// The initializer's name.
        tensor: String,
        /// What is wrong with its reference.
        message: String,
    },
}

// ---- protobuf wire format ----------------------------------------------------------------

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One field of a message: its number, wire type, payload, and the whole encoded field
/// (key included) so that untouched fields can be copied through byte for byte.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    number: u32,
    wire: u8,
    payload: &'a [u8],
    varint: u64,
    raw: &'a [u8],
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = read_varint(buf, &mut pos)?;
        let number = u32::try_from(key >> 3).map_err(|_| "field number out of range")?;
        let wire = (key & 7) as u8;
        let (payload, varint) = match wire {
            VARINT => {
                let v = read_varint(buf, &mut pos)?;
                (&buf[pos..pos], v)
            }
            FIXED64 | FIXED32 => {
                let n = if wire == FIXED64 { 8 } else { 4 };
                let p = buf.get(pos..pos + n).ok_or("truncated fixed field")?;
                pos += n;
                (p, 0)
            }
            LEN => {
                let n = usize::try_from(read_varint(buf, &mut pos)?)
                    .map_err(|_| "length out of range")?;
                let end = pos.checked_add(n).ok_or("length overflow")?;
                let p = buf
                    .get(pos..end)
                    .ok_or("truncated length-delimited field")?;
                pos = end;
                (p, 0)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push(Field {
            number,
            wire,
            payload,
            varint,
            raw: &buf[start..pos],
        });
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn put_int(out: &mut Vec<u8>, number: u32, v: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, v);
}

fn strings<'a>(fs: &[Field<'a>], number: u32) -> Vec<&'a str> {
    fs.iter()
        .filter(|f| f.number == number && f.wire == LEN)
        .map(|f| std::str::from_utf8(f.payload).unwrap_or(""))
        .collect()
}

fn string<'a>(fs: &[Field<'a>], number: u32) -> &'a str {
    strings(fs, number).into_iter().next_back().unwrap_or("")
}

// ---- ONNX messages (field numbers from onnx.proto) -------------------------------------------

const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_OP_TYPE: u32 = 4;
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_FLOAT_DATA: u32 = 4;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const TENSOR_EXTERNAL_DATA: u32 = 13;
const TENSOR_DATA_LOCATION: u32 = 14;
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;
const FLOAT: u64 = 1;

/// The token-id lookup of a BERT-family graph.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddingSite {
    /// Name of the `[vocab, hidden]` initializer.
    pub table: String,
    /// Name of the `Gather` output: the word embeddings of the input tokens.
    pub output: String,
    /// Rows of the table: the vocabulary size.
    pub vocab: usize,
    /// Columns of the table: the embedding width.
    pub hidden: usize,
}

/// A model file held in memory, with the operations attacks need.
pub(crate) struct OnnxModel {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl OnnxModel {
    /// Read a model file. Weights kept in external data files beside it (`model.onnx.data`,
    /// as torch's exporter writes by default) are read in and inlined, so that the edited
    /// graphs this module makes, which ONNX Runtime loads from memory and so without a folder
    /// to resolve file references against, are whole.
    pub fn read(path: &Path) -> Result<Self, OnnxError> {
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut model = Self {
            path: path.to_path_buf(),
            bytes,
        };
        if let Some(inlined) = model.with_external_data_inlined()? {
            model.bytes = inlined;
        }
        Ok(model)
    }

    /// The model with every external initializer's bytes moved into `raw_data`; `None` when
    /// the graph has none. Locations are resolved against the model's folder and may not leave
    /// it (the rule ONNX Runtime applies to files it loads).
    fn with_external_data_inlined(&self) -> Result<Option<Vec<u8>>, OnnxError> {
        let top = fields(&self.bytes).map_err(|m| self.malformed(m))?;
        let graph = fields(self.graph()?).map_err(|m| self.malformed(m))?;
        let external = |f: &Field| -> Result<bool, OnnxError> {
            Ok(f.number == GRAPH_INITIALIZER
                && f.wire == LEN
                && fields(f.payload)
                    .map_err(|m| self.malformed(m))?
                    .iter()
                    .any(|t| t.number == TENSOR_EXTERNAL_DATA))
        };
        let mut any = false;
        for f in &graph {
            any |= external(f)?;
        }
        if !any {
            return Ok(None);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let mut new_graph = Vec::with_capacity(self.bytes.len());
        for f in &graph {
            if !external(f)? {
                new_graph.extend_from_slice(f.raw);
                continue;
            }
            let tensor = fields(f.payload).map_err(|m| self.malformed(m))?;
            let name = string(&tensor, TENSOR_NAME).to_string();
            let bad = |message: String| OnnxError::ExternalData {
                path: self.path.clone(),
                tensor: name.clone(),
                message,
            };
            let (mut location, mut offset, mut length) = (None, 0usize, None);
            for entry in tensor.iter().filter(|t| t.number == TENSOR_EXTERNAL_DATA) {
                let kv = fields(entry.payload).map_err(|m| self.malformed(m))?;
                let value = string(&kv, ENTRY_VALUE);
                let number = || {
                    value
                        .parse::<usize>()
                        .map_err(|_| bad(format!("{value:?} is not a byte count")))
                };
                match string(&kv, ENTRY_KEY) {
                    "location" => location = Some(value.to_string()),
                    "offset" => offset = number()?,
                    "length" => length = Some(number()?),
                    _ => {}
                }
            }
            let location = location.ok_or_else(|| bad("no location".into()))?;
            let relative = Path::new(&location);
            if relative.is_absolute()
                || relative
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(bad(format!(
                    "location {location:?} is not a file inside the model's folder"
                )));
            }
            if !files.contains_key(&location) {
                let file = dir.join(relative);
                // #30 item 4: the location's text is inside the folder; what it resolves to
                // (a symlinked data file, or a symlinked folder on its path) must be too.
                let resolved = std::fs::canonicalize(&file).map_err(|source| OnnxError::Read {
                    path: file.clone(),
                    source,
                })?;
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                let folder = std::fs::canonicalize(dir).map_err(|source| OnnxError::Read {
                    path: dir.to_path_buf(),
                    source,
                })?;
                if !resolved.starts_with(&folder) {
                    return Err(bad(format!(
                        "location {location:?} resolves to {}, outside the model's folder \
                         (symlinks followed); copy the data into the folder",
                        resolved.display()
                    )));
                }
                let data = std::fs::read(&file).map_err(|source| OnnxError::Read {
                    path: file.clone(),
                    source,
                })?;
                files.insert(location.clone(), data);
            }
            let data = &files[&location];
            let end = match length {
                Some(n) => offset.checked_add(n),
                None => Some(data.len()),
            };
            let bytes = end.and_then(|end| data.get(offset..end)).ok_or_else(|| {
                bad(format!(
                    "bytes {offset}..{} lie outside {location} ({} bytes)",
                    end.map_or("?".to_string(), |e| e.to_string()),
                    data.len()
                ))
            })?;
            let mut inlined = Vec::with_capacity(bytes.len() + 64);
            for t in &tensor {
                if !matches!(
                    t.number,
                    TENSOR_EXTERNAL_DATA | TENSOR_DATA_LOCATION | TENSOR_RAW_DATA
                ) {
                    inlined.extend_from_slice(t.raw);
                }
            }
            put_len(&mut inlined, TENSOR_RAW_DATA, bytes);
            put_len(&mut new_graph, GRAPH_INITIALIZER, &inlined);
        }
        Ok(Some(self.with_graph(&top, &new_graph)))
    }

    /// A model already in memory (an edited graph); `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Self {
        Self {
            path: path.to_path_buf(),
            bytes,
        }
    }

    /// The serialised model.
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The serialised model, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn malformed(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Malformed {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn no_embedding(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::NoEmbedding {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn graph(&self) -> Result<&[u8], OnnxError> {
        let top = fields(&self.bytes).map_err(|m| self.malformed(m))?;
        top.iter()
            .rev()
            .find(|f| f.number == MODEL_GRAPH && f.wire == LEN)
            .map(|f| f.payload)
            .ok_or_else(|| self.malformed("no graph"))
    }

    /// Whether any node of the main graph is an `op` (e.g. `DynamicQuantizeLinear`).
    pub fn uses_op(&self, op: &str) -> Result<bool, OnnxError> {
        let graph = fields(self.graph()?).map_err(|m| self.malformed(m))?;
        for f in graph
            .iter()
            .filter(|f| f.number == GRAPH_NODE && f.wire == LEN)
        {
            let node = fields(f.payload).map_err(|m| self.malformed(m))?;
            if string(&node, NODE_OP_TYPE) == op {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Find the `Gather(table, ids)` whose ids come from the graph input `input_ids` (directly
    /// or through Cast/Unsqueeze/Reshape/Identity) and whose table is a 2-d float initializer.
    pub fn embedding_site(&self) -> Result<EmbeddingSite, OnnxError> {
        let graph = fields(self.graph()?).map_err(|m| self.malformed(m))?;
        let nodes: Vec<Vec<Field>> = graph
            .iter()
            .filter(|f| f.number == GRAPH_NODE && f.wire == LEN)
            .map(|f| fields(f.payload))
            .collect::<Result<_, _>>()
            .map_err(|m| self.malformed(m))?;
        fn from_input_ids(nodes: &[Vec<Field>], first: &str) -> bool {
            let mut name = first.to_string();
            for _ in 0..8 {
                if name == "input_ids" {
                    return true;
                }
                let producer = nodes
                    .iter()
                    .find(|n| strings(n, NODE_OUTPUT).contains(&name.as_str()));
                match producer {
                    Some(n)
                        if matches!(
                            string(n, NODE_OP_TYPE),
                            "Cast" | "Unsqueeze" | "Reshape" | "Identity"
                        ) =>
                    {
                        name = strings(n, NODE_INPUT)
                            .first()
                            .copied()
                            .unwrap_or("")
                            .to_string();
                    }
                    _ => return false,
                }
            }
            false
        }
        for node in &nodes {
            if string(node, NODE_OP_TYPE) != "Gather" {
                continue;
            }
            let inputs = strings(node, NODE_INPUT);
            if inputs.len() != 2 || !from_input_ids(&nodes, inputs[1]) {
                continue;
            }
            let Some(table) = self.initializer(&graph, inputs[0])? else {
                continue;
            };
            let dims = tensor_dims(&table);
            if dims.len() != 2 || tensor_type(&table) != FLOAT {
                return Err(self.no_embedding(format!(
                    "{} is not a 2-d float table (dims {dims:?})",
                    inputs[0]
                )));
            }
            return Ok(EmbeddingSite {
                table: inputs[0].to_string(),
                output: strings(node, NODE_OUTPUT)
                    .first()
                    .copied()
                    .unwrap_or("")
                    .to_string(),
                vocab: dims[0] as usize,
                hidden: dims[1] as usize,
            });
        }
        Err(self.no_embedding("no Gather reads an initializer with ids from input_ids"))
    }

    fn initializer<'a>(
        &self,
        graph: &[Field<'a>],
        name: &str,
    ) -> Result<Option<Vec<Field<'a>>>, OnnxError> {
        for f in graph
            .iter()
            .filter(|f| f.number == GRAPH_INITIALIZER && f.wire == LEN)
        {
            let t = fields(f.payload).map_err(|m| self.malformed(m))?;
            if string(&t, TENSOR_NAME) == name {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The `[vocab, hidden]` embedding table, row-major.
    pub fn embedding_matrix(&self, site: &EmbeddingSite) -> Result<Vec<f32>, OnnxError> {
        let graph = fields(self.graph()?).map_err(|m| self.malformed(m))?;
        let table = self
            .initializer(&graph, &site.table)?
            .ok_or_else(|| self.no_embedding(format!("initializer {} vanished", site.table)))?;
        let expected = site.vocab * site.hidden;
        let values: Vec<f32> =
            if let Some(raw) = table.iter().rev().find(|f| f.number == TENSOR_RAW_DATA) {
                raw.payload
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                let mut v = Vec::with_capacity(expected);
                for f in table.iter().filter(|f| f.number == TENSOR_FLOAT_DATA) {
                    match f.wire {
                        LEN => v.extend(
                            f.payload
                                .chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        ),
                        FIXED32 => v.push(f32::from_le_bytes([
                            f.payload[0],
                            f.payload[1],
                            f.payload[2],
                            f.payload[3],
                        ])),
                        _ => {}
                    }
                }
                v
            };
        if values.len() != expected {
            return Err(self.malformed(format!(
                "{} holds {} floats, expected {expected}",
                site.table,
                values.len()
            )));
        }
        Ok(values)
    }

    /// The same model with the embedding lookup removed and its output (`site.output`, a
    /// float `[batch, sequence, hidden]` tensor) made a graph input. `input_ids` stays an
    /// input: exports read its shape for position ids and masks.
    pub fn with_embedding_input(&self, site: &EmbeddingSite) -> Result<Vec<u8>, OnnxError> {
        let top = fields(&self.bytes).map_err(|m| self.malformed(m))?;
        let graph = fields(self.graph()?).map_err(|m| self.malformed(m))?;
        let mut new_graph = Vec::with_capacity(self.graph()?.len() + 64);
        let mut removed = false;
        // The table stays only if another node (a tied output layer, say) still reads it;
        // otherwise ONNX Runtime would warn about, and drop, an unused initializer.
        let mut table_still_used = false;
        for f in graph
            .iter()
            .filter(|f| f.number == GRAPH_NODE && f.wire == LEN)
        {
            let node = fields(f.payload).map_err(|m| self.malformed(m))?;
            let is_lookup = string(&node, NODE_OP_TYPE) == "Gather"
                && strings(&node, NODE_OUTPUT).first() == Some(&site.output.as_str());
            table_still_used |=
                !is_lookup && strings(&node, NODE_INPUT).contains(&site.table.as_str());
        }
        for f in &graph {
            if f.number == GRAPH_NODE && f.wire == LEN {
                let node = fields(f.payload).map_err(|m| self.malformed(m))?;
                if string(&node, NODE_OP_TYPE) == "Gather"
                    && strings(&node, NODE_OUTPUT).first() == Some(&site.output.as_str())
                {
                    removed = true;
                    continue;
                }
            }
            if f.number == GRAPH_INITIALIZER && f.wire == LEN && !table_still_used {
                let tensor = fields(f.payload).map_err(|m| self.malformed(m))?;
                if string(&tensor, TENSOR_NAME) == site.table {
                    continue;
                }
            }
            new_graph.extend_from_slice(f.raw);
        }
        if !removed {
            return Err(self.no_embedding(format!("no Gather produces {}", site.output)));
        }
        put_len(
            &mut new_graph,
            GRAPH_INPUT,
            &value_info(&site.output, site.hidden),
        );
        let mut out = Vec::with_capacity(self.bytes.len() + 64);
        let mut replaced = false;
        for f in &top {
            if f.number == MODEL_GRAPH && f.wire == LEN && !replaced {
                put_len(&mut out, MODEL_GRAPH, &new_graph);
                replaced = true;
            } else if f.number == MODEL_GRAPH {
                continue;
            } else {
                out.extend_from_slice(f.raw);
            }
        }
        Ok(out)
    }
}

// ---- [CLS]-only tail -------------------------------------------------------------------------

const NODE_ATTRIBUTE: u32 = 5;
const ATTR_NAME: u32 = 1;
const ATTR_I: u32 = 3;
const ATTR_T: u32 = 5;
const GRAPH_VALUE_INFO: u32 = 13;
const GRAPH_OUTPUT: u32 = 12;
const VALUE_INFO_NAME: u32 = 1;
const TENSOR_INT64_DATA: u32 = 7;
const INT64: u64 = 7;
/// Suffix of the narrowed copy of a tensor; initializer names of the slice bounds.
const CLS_SUFFIX: &str = "/robust_cls";
const CLS_BOUNDS: [(&str, i64); 3] = [
    ("robust_cls/starts", 0),
    ("robust_cls/ends", 1),
    ("robust_cls/axes", 1),
];

struct NodeView<'a> {
    op: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    fields: Vec<Field<'a>>,
}

/// Integer attribute `name` of a node, if set.
fn attr_int(node: &[Field], name: &str) -> Option<i64> {
    node.iter()
        .filter(|f| f.number == NODE_ATTRIBUTE && f.wire == LEN)
        .filter_map(|f| fields(f.payload).ok())
        .find(|a| string(a, ATTR_NAME) == name)
        .and_then(|a| {
            a.iter()
                .find(|f| f.number == ATTR_I && f.wire == VARINT)
                .map(|f| f.varint as i64)
        })
}

/// A constant tensor's dims and, when it is one int64, its value.
fn constant_of(t: &[Field]) -> (Vec<i64>, Option<i64>) {
    let dims = tensor_dims(t);
    let mut value = None;
    if tensor_type(t) == INT64 && dims.iter().product::<i64>() == 1 {
        if let Some(raw) = t
            .iter()
            .find(|f| f.number == TENSOR_RAW_DATA && f.wire == LEN)
        {
            if let Ok(bytes) = <[u8; 8]>::try_from(raw.payload) {
                value = Some(i64::from_le_bytes(bytes));
            }
        } else if let Some(f) = t.iter().find(|f| f.number == TENSOR_INT64_DATA) {
            value = match f.wire {
                VARINT => Some(f.varint as i64),
                LEN => read_varint(f.payload, &mut 0).ok().map(|v| v as i64),
                _ => None,
            };
        }
    }
    (dims, value)
}

/// Can `node` be computed for one position of the sequence from that position of its inputs
/// alone? Only ops that act on the last axis or element by element, with constant operands
/// small enough (a bias, a scale, a scalar, a weight matrix) not to carry a sequence axis.
fn is_row_wise(node: &NodeView, constants: &HashMap<&str, (Vec<i64>, Option<i64>)>) -> bool {
    let rank = |name: &str| constants.get(name).map(|(dims, _)| dims.len());
    let small_or_variable = |name: &str| rank(name).is_none_or(|r| r <= 1);
    let variable = |name: &str| rank(name).is_none();
    match node.op {
        "MatMul" => {
            node.inputs.len() == 2 && variable(node.inputs[0]) && rank(node.inputs[1]) == Some(2)
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            node.inputs.len() == 2
                && node.inputs.iter().all(|i| small_or_variable(i))
                && node.inputs.iter().any(|i| variable(i))
        }
        "LayerNormalization" => {
            attr_int(&node.fields, "axis").unwrap_or(-1) == -1
                && variable(node.inputs[0])
                && node.inputs[1..]
                    .iter()
                    .all(|i| rank(i).is_some_and(|r| r <= 1))
        }
        "Erf" | "Tanh" | "Relu" | "Sigmoid" | "Sqrt" | "Identity" | "Gelu" => {
            node.inputs.len() == 1 && variable(node.inputs[0])
        }
        _ => false,
    }
}

fn int64_initializer(name: &str, value: i64) -> Vec<u8> {
    let mut t = Vec::new();
    put_int(&mut t, TENSOR_DIMS, 1);
    put_int(&mut t, TENSOR_DATA_TYPE, INT64);
    put_len(&mut t, TENSOR_NAME, name.as_bytes());
    put_len(&mut t, TENSOR_RAW_DATA, &value.to_le_bytes());
    t
}

impl OnnxModel {
    /// The same classifier with the tail after its last token-mixing op narrowed to the first
    /// position, or `None` when the graph does not have that shape.
    ///
    /// A BERT classifier reads only `[CLS]` from the last layer (`Gather(axis 1, index 0)` before
    /// the pooler), yet the export computes the last layer's attention output projection,
    /// feed-forward block and layer norms for every token: 18 of the 24·d² FLOPs per token of
    /// that layer, an eighth of the model. Every op between the last attention and that Gather
    /// acts on each position separately, so slicing its inputs to position 0 (`Slice` on axis
    /// 1, kept as length 1 so broadcasting is unchanged) gives the same row 0 and skips the
    /// rest. The rewrite only takes ops it can prove row-wise ([`is_row_wise`]) and only when
    /// nothing else reads what they compute; any doubt leaves the graph as it is.
    pub fn with_cls_only_tail(&self) -> Result<Option<(Vec<u8>, usize)>, OnnxError> {
        let top = fields(&self.bytes).map_err(|m| self.malformed(m))?;
        let graph = fields(self.graph()?).map_err(|m| self.malformed(m))?;
        let mut constants: HashMap<&str, (Vec<i64>, Option<i64>)> = HashMap::new();
        let mut nodes = Vec::new();
        let mut graph_outputs = HashSet::new();
        for f in graph.iter().filter(|f| f.wire == LEN) {
            match f.number {
                GRAPH_INITIALIZER => {
                    let t = fields(f.payload).map_err(|m| self.malformed(m))?;
                    constants.insert(string(&t, TENSOR_NAME), constant_of(&t));
                }
                GRAPH_OUTPUT => {
                    let info = fields(f.payload).map_err(|m| self.malformed(m))?;
                    graph_outputs.insert(string(&info, VALUE_INFO_NAME));
                }
                GRAPH_NODE => {
                    let n = fields(f.payload).map_err(|m| self.malformed(m))?;
                    nodes.push(NodeView {
                        op: string(&n, NODE_OP_TYPE),
                        inputs: strings(&n, NODE_INPUT),
                        outputs: strings(&n, NODE_OUTPUT),
                        fields: n,
                    });
                }
                _ => {}
            }
        }
        for node in nodes.iter().filter(|n| n.op == "Constant") {
            let value = node
                .fields
                .iter()
                .filter(|f| f.number == NODE_ATTRIBUTE && f.wire == LEN)
                .filter_map(|f| fields(f.payload).ok())
                .find(|a| string(a, ATTR_NAME) == "value")
                .and_then(|a| {
                    a.iter()
                        .find(|f| f.number == ATTR_T && f.wire == LEN)
                        .copied()
                })
                .and_then(|t| fields(t.payload).ok());
            if let (Some(t), Some(&out)) = (value, node.outputs.first()) {
                constants.insert(out, constant_of(&t));
            }
        }
        let mut producer: HashMap<&str, usize> = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for &o in &n.outputs {
                producer.insert(o, i);
            }
            for &input in &n.inputs {
                consumers.entry(input).or_default().push(i);
            }
        }
        // The pooler's read of position 0.
        let Some(pool) = nodes.iter().position(|n| {
            n.op == "Gather"
                && n.inputs.len() == 2
                && attr_int(&n.fields, "axis") == Some(1)
                && constants.get(n.inputs[1]) == Some(&(vec![], Some(0)))
        }) else {
            return Ok(None);
        };
        let tail_end = nodes[pool].inputs[0];
        // Every row-wise op the pooled tensor depends on...
        let mut tail: HashSet<usize> = HashSet::new();
        let mut stack = vec![tail_end];
        while let Some(t) = stack.pop() {
            if constants.contains_key(t) {
                continue;
            }
            if let Some(&p) = producer.get(t)
                && is_row_wise(&nodes[p], &constants)
                && tail.insert(p)
            {
                stack.extend(nodes[p].inputs.iter().copied());
            }
        }
        // ...less those whose results something else reads as well (the previous layer's
        // output feeds this layer's attention too): repeat until nothing changes.
        loop {
            let leaking: Vec<usize> = tail
                .iter()
                .copied()
                .filter(|&n| {
                    nodes[n].outputs.iter().any(|o| {
                        graph_outputs.contains(o)
                            || consumers
                                .get(o)
                                .is_some_and(|c| c.iter().any(|c| *c != pool && !tail.contains(c)))
                    })
                })
                .collect();
            if leaking.is_empty() {
                break;
            }
            for n in leaking {
                tail.remove(&n);
            }
        }
        let saves_work = tail.iter().any(|&n| nodes[n].op == "MatMul");
        if !saves_work || !producer.get(tail_end).is_some_and(|p| tail.contains(p)) {
            return Ok(None);
        }
        let tail_outputs: HashSet<&str> = tail
            .iter()
            .flat_map(|&n| nodes[n].outputs.iter().copied())
            .collect();
        let mut sliced: HashSet<&str> = HashSet::new();
        let mut new_graph = Vec::with_capacity(self.graph()?.len() + 1024);
        let mut index = 0;
        for f in &graph {
            if f.number == GRAPH_VALUE_INFO && f.wire == LEN {
                // Shapes recorded for the narrowed tensors would now be wrong.
                let info = fields(f.payload).map_err(|m| self.malformed(m))?;
                if tail_outputs.contains(string(&info, VALUE_INFO_NAME)) {
                    continue;
                }
            }
            if f.number != GRAPH_NODE || f.wire != LEN {
                new_graph.extend_from_slice(f.raw);
                continue;
            }
            let i = index;
            index += 1;
            if !tail.contains(&i) {
                new_graph.extend_from_slice(f.raw);
                continue;
            }
            let narrowed =
                |input: &str| !constants.contains_key(input) && !tail_outputs.contains(input);
            for &input in nodes[i].inputs.iter().filter(|i| narrowed(i)) {
                if sliced.insert(input) {
                    let mut slice = Vec::new();
                    put_len(&mut slice, NODE_INPUT, input.as_bytes());
                    for (bound, _) in CLS_BOUNDS {
                        put_len(&mut slice, NODE_INPUT, bound.as_bytes());
                    }
                    put_len(
                        &mut slice,
                        NODE_OUTPUT,
                        format!("{input}{CLS_SUFFIX}").as_bytes(),
                    );
                    put_len(&mut slice, NODE_OP_TYPE, b"Slice");
                    put_len(&mut new_graph, GRAPH_NODE, &slice);
                }
            }
            let mut node = Vec::with_capacity(f.payload.len() + 32);
            for nf in &nodes[i].fields {
                match nf.number {
                    NODE_INPUT if nf.wire == LEN => {
                        let name = std::str::from_utf8(nf.payload).unwrap_or("");
                        if narrowed(name) {
                            put_len(
                                &mut node,
                                NODE_INPUT,
                                format!("{name}{CLS_SUFFIX}").as_bytes(),
                            );
                        } else {
                            node.extend_from_slice(nf.raw);
                        }
                    }
                    _ => node.extend_from_slice(nf.raw),
                }
            }
            put_len(&mut new_graph, GRAPH_NODE, &node);
        }
        for (name, value) in CLS_BOUNDS {
            put_len(
                &mut new_graph,
                GRAPH_INITIALIZER,
                &int64_initializer(name, value),
            );
        }
        Ok(Some((self.with_graph(&top, &new_graph), tail.len())))
    }

    /// The model message with its graph replaced and every other field copied through.
    fn with_graph(&self, top: &[Field], new_graph: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 1024);
        let mut replaced = false;
        for f in top {
            if f.number == MODEL_GRAPH && f.wire == LEN && !replaced {
                put_len(&mut out, MODEL_GRAPH, new_graph);
                replaced = true;
            } else if f.number != MODEL_GRAPH {
                out.extend_from_slice(f.raw);
            }
        }
        out
    }
}

fn tensor_dims(t: &[Field]) -> Vec<i64> {
    let mut dims = Vec::new();
    for f in t.iter().filter(|f| f.number == TENSOR_DIMS) {
        match f.wire {
            VARINT => dims.push(f.varint as i64),
            LEN => {
                let mut pos = 0;
                while pos < f.payload.len() {
                    match read_varint(f.payload, &mut pos) {
                        Ok(v) => dims.push(v as i64),
                        Err(_) => break,
                    }
                }
            }
            _ => {}
        }
    }
    dims
}

fn tensor_type(t: &[Field]) -> u64 {
    t.iter()
        .rev()
        .find(|f| f.number == TENSOR_DATA_TYPE && f.wire == VARINT)
        .map_or(0, |f| f.varint)
}

/// ValueInfoProto { name, type: TypeProto { tensor_type: { elem_type: FLOAT, shape: [batch,
/// sequence, hidden] } } }.
fn value_info(name: &str, hidden: usize) -> Vec<u8> {
    tensor_info(name, FLOAT, &[Err("batch"), Err("sequence"), Ok(hidden)])
}

/// ValueInfoProto for a tensor of element type `elem`; each dim is a size (`Ok`) or a
/// symbolic name (`Err`).
fn tensor_info(name: &str, elem: u64, dims: &[Result<usize, &str>]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Ok(v) => put_int(&mut dim, 1, *v as u64),
            Err(p) => put_len(&mut dim, 2, p.as_bytes()),
        }
        put_len(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    put_int(&mut tensor, 1, elem);
    put_len(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    put_len(&mut ty, 1, &tensor);
    let mut info = Vec::new();
    put_len(&mut info, 1, name.as_bytes());
    put_len(&mut info, 2, &ty);
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        build::node(op, inputs, outputs, &[])
    }

    fn table(name: &str, vocab: usize, hidden: usize) -> Vec<u8> {
        let mut t = Vec::new();
        put_int(&mut t, TENSOR_DIMS, vocab as u64);
        put_int(&mut t, TENSOR_DIMS, hidden as u64);
        put_int(&mut t, TENSOR_DATA_TYPE, FLOAT);
        put_len(&mut t, TENSOR_NAME, name.as_bytes());
        let raw: Vec<u8> = (0..vocab * hidden)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        put_len(&mut t, TENSOR_RAW_DATA, &raw);
        t
    }

    fn model() -> Vec<u8> {
        let mut g = Vec::new();
        put_len(
            &mut g,
            GRAPH_NODE,
            &node("Cast", &["input_ids"], &["ids64"]),
        );
        put_len(
            &mut g,
            GRAPH_NODE,
            &node("Gather", &["emb.weight", "ids64"], &["word_emb"]),
        );
        put_len(
            &mut g,
            GRAPH_NODE,
            &node("Add", &["word_emb", "pos"], &["sum"]),
        );
        put_len(&mut g, GRAPH_INITIALIZER, &table("emb.weight", 5, 3));
        put_len(&mut g, 99, b"unknown future field");
        let mut m = Vec::new();
        put_int(&mut m, 1, 8); // ir_version
        put_len(&mut m, MODEL_GRAPH, &g);
        put_len(&mut m, 14, b"metadata survives");
        m
    }

    #[test]
    fn finds_the_lookup_through_a_cast() {
        let m = OnnxModel::from_bytes(Path::new("m.onnx"), model());
        let site = m.embedding_site().unwrap();
        assert_eq!(
            (
                site.table.as_str(),
                site.output.as_str(),
                site.vocab,
                site.hidden
            ),
            ("emb.weight", "word_emb", 5, 3)
        );
        let matrix = m.embedding_matrix(&site).unwrap();
        assert_eq!(matrix.len(), 15);
        assert_eq!(matrix[7], 7.0);
    }

    #[test]
    fn rewrite_removes_only_the_lookup_and_keeps_unknown_fields() {
        let m = OnnxModel::from_bytes(Path::new("m.onnx"), model());
        let site = m.embedding_site().unwrap();
        let rewritten = m.with_embedding_input(&site).unwrap();
        let r = OnnxModel::from_bytes(Path::new("r.onnx"), rewritten);
        let graph = fields(r.graph().unwrap()).unwrap();
        let ops: Vec<String> = graph
            .iter()
            .filter(|f| f.number == GRAPH_NODE)
            .map(|f| string(&fields(f.payload).unwrap(), NODE_OP_TYPE).to_string())
            .collect();
        assert_eq!(ops, ["Cast", "Add"]);
        let inputs: Vec<String> = graph
            .iter()
            .filter(|f| f.number == GRAPH_INPUT)
            .map(|f| string(&fields(f.payload).unwrap(), 1).to_string())
            .collect();
        assert_eq!(inputs, ["word_emb"]);
        assert!(
            graph
                .iter()
                .any(|f| f.number == 99 && f.payload == b"unknown future field")
        );
        let top = fields(r.bytes()).unwrap();
        assert!(
            top.iter()
                .any(|f| f.number == 14 && f.payload == b"metadata survives")
        );
        assert!(r.embedding_site().is_err(), "the lookup is gone");
        assert!(
            !graph.iter().any(|f| f.number == GRAPH_INITIALIZER),
            "the unused table is dropped"
        );
    }

    /// x [batch, seq, 4] -> mix in the sequence mean -> MatMul -> bias -> Tanh -> Gather(axis 1,
    /// index 0) -> MatMul -> y [batch, 3]: the shape of a BERT classifier's tail, small.
    fn tail_model(pooled_is_output: bool) -> Vec<u8> {
        let mut g = Vec::new();
        let mut add = |n: Vec<u8>| put_len(&mut g, GRAPH_NODE, &n);
        add(build::node(
            "ReduceMean",
            &["x"],
            &["mean"],
            &[
                build::attr_ints("axes", &[1]),
                build::attr_int("keepdims", 1),
            ],
        ));
        add(node("Add", &["x", "mean"], &["mixed"]));
        add(node("MatMul", &["mixed", "w1"], &["h"]));
        add(node("Add", &["h", "b1"], &["hb"]));
        add(node("Tanh", &["hb"], &["act"]));
        add(build::node(
            "Gather",
            &["act", "zero"],
            &["pooled"],
            &[build::attr_int("axis", 1)],
        ));
        add(node("MatMul", &["pooled", "w2"], &["y"]));
        let w1: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
        let w2: Vec<f32> = (0..12).map(|i| (i as f32 * 0.71).cos()).collect();
        put_len(
            &mut g,
            GRAPH_INITIALIZER,
            &build::float_tensor("w1", &[4, 4], &w1),
        );
        put_len(
            &mut g,
            GRAPH_INITIALIZER,
            &build::float_tensor("b1", &[4], &[0.1, -0.2, 0.3, 0.0]),
        );
        put_len(
            &mut g,
            GRAPH_INITIALIZER,
            &build::float_tensor("w2", &[4, 3], &w2),
        );
        let mut zero = Vec::new();
        put_int(&mut zero, TENSOR_DATA_TYPE, INT64);
        put_len(&mut zero, TENSOR_NAME, b"zero");
        put_len(&mut zero, TENSOR_RAW_DATA, &0i64.to_le_bytes());
        put_len(&mut g, GRAPH_INITIALIZER, &zero);
        put_len(
            &mut g,
            GRAPH_INPUT,
            &tensor_info("x", FLOAT, &[Err("batch"), Err("sequence"), Ok(4)]),
        );
        put_len(
            &mut g,
            GRAPH_OUTPUT,
            &tensor_info("y", FLOAT, &[Err("batch"), Ok(3)]),
        );
        if pooled_is_output {
            put_len(
                &mut g,
                GRAPH_OUTPUT,
                &tensor_info("act", FLOAT, &[Err("batch"), Err("sequence"), Ok(4)]),
            );
        }
        let mut opset = Vec::new();
        put_len(&mut opset, 1, b"");
        put_int(&mut opset, 2, 17);
        let mut m = Vec::new();
        put_int(&mut m, 1, 8);
        put_len(&mut m, MODEL_GRAPH, &g);
        put_len(&mut m, 8, &opset);
        m
    }

    fn run_tail(bytes: &[u8], x: &[f32], shape: [usize; 3]) -> Vec<f32> {
        let env = crate::model::runtime::environment(None).expect("onnx runtime (./scripts/setup)");
        let mut session = crate::model::session::session_builder(env, 1)
            .and_then(|mut b| b.commit_from_memory(bytes))
            .expect("session");
        let input = ort::value::Tensor::from_array((shape, x.to_vec())).unwrap();
        let out = session.run(ort::inputs!["x" => input]).unwrap();
        let (_, y) = out["y"].try_extract_tensor::<f32>().unwrap();
        y.to_vec()
    }

    #[test]
    fn cls_tail_is_narrowed_and_computes_the_same() {
        let original = tail_model(false);
        let m = OnnxModel::from_bytes(Path::new("t.onnx"), original.clone());
        let (narrowed, nodes) = m.with_cls_only_tail().unwrap().expect("tail found");
        assert_eq!(nodes, 4, "Add, MatMul, Add, Tanh");
        let r = OnnxModel::from_bytes(Path::new("n.onnx"), narrowed.clone());
        let g = fields(r.graph().unwrap()).unwrap();
        let slices: Vec<Vec<&str>> = g
            .iter()
            .filter(|f| f.number == GRAPH_NODE)
            .map(|f| fields(f.payload).unwrap())
            .filter(|n| string(n, NODE_OP_TYPE) == "Slice")
            .map(|n| strings(&n, NODE_INPUT)[..1].to_vec())
            .collect();
        assert_eq!(slices, vec![vec!["x"], vec!["mean"]]);
        for (batch, seq) in [(1, 1), (2, 5), (3, 9)] {
            let x: Vec<f32> = (0..batch * seq * 4)
                .map(|i| (i as f32 * 0.13).sin())
                .collect();
            let a = run_tail(&original, &x, [batch, seq, 4]);
            let b = run_tail(&narrowed, &x, [batch, seq, 4]);
            assert_eq!(a.len(), batch * 3);
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-6, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn cls_tail_is_left_alone_when_it_is_read_elsewhere_or_absent() {
        let m = OnnxModel::from_bytes(Path::new("t.onnx"), tail_model(true));
        assert!(m.with_cls_only_tail().unwrap().is_none());
        let bag = build::bag_classifier(&[0.0; 8], 4, 2, &[0.0; 4], 2);
        let m = OnnxModel::from_bytes(Path::new("b.onnx"), bag);
        assert!(m.with_cls_only_tail().unwrap().is_none());
    }

    /// `bytes` with every initializer's raw data moved to `location` beside the model, as
    /// `onnx.save_model(..., save_as_external_data=True)` writes it.
    fn externalize(bytes: &[u8], location: &str) -> (Vec<u8>, Vec<u8>) {
        let top = fields(bytes).unwrap();
        let graph_field = top.iter().find(|f| f.number == MODEL_GRAPH).unwrap();
        let mut data = Vec::new();
        let mut graph = Vec::new();
        for f in fields(graph_field.payload).unwrap() {
            if f.number != GRAPH_INITIALIZER {
                graph.extend_from_slice(f.raw);
                continue;
            }
            let mut t = Vec::new();
            for tf in fields(f.payload).unwrap() {
                if tf.number == TENSOR_RAW_DATA {
                    let entry = |k: &str, v: &str| {
                        let mut e = Vec::new();
                        put_len(&mut e, ENTRY_KEY, k.as_bytes());
                        put_len(&mut e, ENTRY_VALUE, v.as_bytes());
                        e
                    };
                    put_len(&mut t, TENSOR_EXTERNAL_DATA, &entry("location", location));
                    let offset = data.len().to_string();
                    put_len(&mut t, TENSOR_EXTERNAL_DATA, &entry("offset", &offset));
                    let length = tf.payload.len().to_string();
                    put_len(&mut t, TENSOR_EXTERNAL_DATA, &entry("length", &length));
                    put_int(&mut t, TENSOR_DATA_LOCATION, 1);
                    data.extend_from_slice(tf.payload);
                } else {
                    t.extend_from_slice(tf.raw);
                }
            }
            put_len(&mut graph, GRAPH_INITIALIZER, &t);
        }
        let model = OnnxModel::from_bytes(Path::new("m.onnx"), bytes.to_vec());
        (model.with_graph(&top, &graph), data)
    }

    #[test]
    fn external_data_is_read_from_beside_the_model_and_inlined() {
        let table: Vec<f32> = (0..8).map(|i| i as f32 * 0.5).collect();
        let whole = build::bag_classifier(&table, 4, 2, &[1.0, -1.0, 0.5, 2.0], 2);
        let (split, data) = externalize(&whole, "model.onnx.data");
        assert_ne!(split, whole);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.onnx"), &split).unwrap();
        std::fs::write(dir.path().join("model.onnx.data"), &data).unwrap();
        let m = OnnxModel::read(&dir.path().join("model.onnx")).unwrap();
        assert_eq!(
            m.bytes(),
            &whole[..],
            "inlining restores the one-file model"
        );
        let site = m.embedding_site().unwrap();
        assert_eq!(m.embedding_matrix(&site).unwrap(), table);

        // A missing data file, a location outside the folder and a short file are errors.
        std::fs::remove_file(dir.path().join("model.onnx.data")).unwrap();
        let err = OnnxModel::read(&dir.path().join("model.onnx"))
            .err()
            .expect("an error");
        assert!(err.to_string().contains("model.onnx.data"), "{err}");
        let (escaping, _) = externalize(&whole, "../model.onnx.data");
        std::fs::write(dir.path().join("model.onnx"), &escaping).unwrap();
        let err = OnnxModel::read(&dir.path().join("model.onnx"))
            .err()
            .expect("an error");
        assert!(err.to_string().contains("not a file inside"), "{err}");
        std::fs::write(dir.path().join("model.onnx"), &split).unwrap();
        std::fs::write(dir.path().join("model.onnx.data"), &data[..10]).unwrap();
        let err = OnnxModel::read(&dir.path().join("model.onnx"))
            .err()
            .expect("an error");
        assert!(err.to_string().contains("outside model.onnx.data"), "{err}");
    }

    /// #30 item 4: `model.onnx.data` (or a folder on its location path) symlinked to a file
    /// outside the model folder was read (the check looked at the path's text). Now the
    /// resolved path is checked.
    #[test]
    fn issue30_item4_external_data_symlinked_outside_the_folder_is_refused() {
        let table: Vec<f32> = (0..8).map(|i| i as f32 * 0.5).collect();
        let whole = build::bag_classifier(&table, 4, 2, &[1.0, -1.0, 0.5, 2.0], 2);
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (split, data) = externalize(&whole, "model.onnx.data");
        std::fs::write(outside.path().join("secret"), &data).unwrap();
        std::fs::write(dir.path().join("model.onnx"), &split).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            dir.path().join("model.onnx.data"),
        )
        .unwrap();
        let err = OnnxModel::read(&dir.path().join("model.onnx"))
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("outside the model's folder"),
            "{err}"
        );
        // A symlinked folder on the location's path.
        let (nested, data) = externalize(&whole, "weights/model.onnx.data");
        std::fs::write(outside.path().join("model.onnx.data"), &data).unwrap();
        std::fs::remove_file(dir.path().join("model.onnx.data")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("weights")).unwrap();
        std::fs::write(dir.path().join("model.onnx"), &nested).unwrap();
        let err = OnnxModel::read(&dir.path().join("model.onnx"))
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("outside the model's folder"),
            "{err}"
        );
        // A symlink that stays inside the folder is fine.
        std::fs::remove_file(dir.path().join("weights")).unwrap();
        std::fs::create_dir(dir.path().join("weights")).unwrap();
        std::fs::write(dir.path().join("weights/real.data"), &data).unwrap();
        std::os::unix::fs::symlink("real.data", dir.path().join("weights/model.onnx.data"))
            .unwrap();
        assert!(OnnxModel::read(&dir.path().join("model.onnx")).is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [vec![0xff; 3], vec![0x3a, 0x7f], vec![]] {
            let m = OnnxModel::from_bytes(Path::new("bad.onnx"), bytes);
            assert!(m.embedding_site().is_err());
        }
    }
}

/// Builders for small ONNX graphs, for tests that need a model they can reason about.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attributes: &[Vec<u8>]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            put_len(&mut n, NODE_INPUT, i.as_bytes());
        }
        for o in outputs {
            put_len(&mut n, NODE_OUTPUT, o.as_bytes());
        }
        put_len(&mut n, NODE_OP_TYPE, op.as_bytes());
        for a in attributes {
            put_len(&mut n, 5, a);
        }
        n
    }

    pub fn attr_ints(name: &str, values: &[i64]) -> Vec<u8> {
        let mut a = Vec::new();
        put_len(&mut a, 1, name.as_bytes());
        for &v in values {
            put_int(&mut a, 8, v as u64);
        }
        put_int(&mut a, 20, 7); // INTS
        a
    }

    pub fn attr_int(name: &str, value: i64) -> Vec<u8> {
        let mut a = Vec::new();
        put_len(&mut a, 1, name.as_bytes());
        put_int(&mut a, 3, value as u64);
        put_int(&mut a, 20, 2); // INT
        a
    }

    pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            put_int(&mut t, TENSOR_DIMS, d as u64);
        }
        put_int(&mut t, TENSOR_DATA_TYPE, FLOAT);
        put_len(&mut t, TENSOR_NAME, name.as_bytes());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_len(&mut t, TENSOR_RAW_DATA, &raw);
        t
    }

    /// A bag-of-embeddings classifier: logits = mean_t(E[ids_t]) W. Inputs `input_ids`,
    /// `attention_mask` (int64 [batch, sequence]); output `logits` [batch, labels]; opset 17.
    pub fn bag_classifier(
        table: &[f32],
        vocab: usize,
        hidden: usize,
        weights: &[f32],
        labels: usize,
    ) -> Vec<u8> {
        const INT64: u64 = 7;
        let mut g = Vec::new();
        put_len(
            &mut g,
            GRAPH_NODE,
            &node("Gather", &["emb", "input_ids"], &["word_emb"], &[]),
        );
        put_len(
            &mut g,
            GRAPH_NODE,
            &node(
                "ReduceMean",
                &["word_emb"],
                &["pooled"],
                &[attr_ints("axes", &[1]), attr_int("keepdims", 0)],
            ),
        );
        put_len(
            &mut g,
            GRAPH_NODE,
            &node("MatMul", &["pooled", "w"], &["logits"], &[]),
        );
        put_len(&mut g, 2, b"bag");
        put_len(
            &mut g,
            GRAPH_INITIALIZER,
            &float_tensor("emb", &[vocab, hidden], table),
        );
        put_len(
            &mut g,
            GRAPH_INITIALIZER,
            &float_tensor("w", &[hidden, labels], weights),
        );
        put_len(
            &mut g,
            GRAPH_INPUT,
            &tensor_info("input_ids", INT64, &[Err("batch"), Err("sequence")]),
        );
        put_len(
            &mut g,
            GRAPH_INPUT,
            &tensor_info("attention_mask", INT64, &[Err("batch"), Err("sequence")]),
        );
        put_len(
            &mut g,
            12,
            &tensor_info("logits", FLOAT, &[Err("batch"), Ok(labels)]),
        );
        let mut opset = Vec::new();
        put_len(&mut opset, 1, b"");
        put_int(&mut opset, 2, 17);
        let mut m = Vec::new();
        put_int(&mut m, 1, 8);
        put_len(&mut m, 2, b"robust-test");
        put_len(&mut m, MODEL_GRAPH, &g);
        put_len(&mut m, 8, &opset);
        m
    }
}
