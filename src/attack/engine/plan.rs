//! Planning: a spec checked and bound to one of the four shapes against its model folder,
//! before anything loads; and the models a run holds, loaded once per folder.

use super::*;

pub use crate::attack::kind::Shape;

/// A checked attack bound to its shape: everything [`execute`] needs, nothing loaded yet.
pub struct Plan {
    /// The spec, checked, with its defaults filled in and paths resolved.
    pub attack: ResolvedAttack,
    /// Which of the four engines runs it.
    pub shape: Shape,
    /// Columns of the sentence corpus (and of the trigger's search corpus).
    pub columns: Columns,
    /// Cloze probes: words listed per template.
    pub top_k: usize,
    /// The segment of a sentence pair the attack perturbs (meaningful with a pair column).
    pub segment: crate::perturb::Segment,
}

impl Plan {
    /// Whether the plan is a row attack that searches each example (word and character
    /// attacks): it keeps a checkpoint chunk by chunk, so `--resume` goes on from it.
    pub fn searches_rows(&self) -> bool {
        self.shape == Shape::TextPerturbation
            && self
                .attack
                .perturber
                .as_ref()
                .is_some_and(|p| p.counts_own_queries())
    }

    /// Whether the plan searches a trigger (rather than evaluating a given one, or running
    /// another shape): it checkpoints every iteration and can be resumed.
    pub fn searches_trigger(&self) -> bool {
        self.shape == Shape::TriggerSearch
            && self
                .attack
                .trigger
                .as_ref()
                .is_some_and(|t| t.given.is_none())
    }

    /// Corpora the plan reads: the evaluated corpus, then the trigger's search corpus.
    pub fn corpora(&self) -> Vec<&Path> {
        let mut out = vec![self.attack.corpus.as_path()];
        if let Some(path) = self
            .attack
            .trigger
            .as_ref()
            .and_then(|t| t.search_corpus.as_ref())
        {
            out.push(path.as_path());
        }
        out
    }

    /// The rate metrics (group "all") this plan's `summary.csv` can hold, for checking gates
    /// before anything runs. `labelled` says whether the evaluated corpus has gold labels.
    pub fn rate_metrics(&self, labelled: bool) -> Vec<Metric> {
        use Metric::*;
        match self.shape {
            Shape::ClozeProbe => vec![
                TruePreferredAffirmative,
                TruePreferredNegated,
                Top1Unchanged,
                AnswerInTopk,
            ],
            _ => {
                let mut m = vec![FlipRate, ExampleFlipRate];
                // Span rows always carry their gold resolution; sentences only with labels.
                if labelled || self.shape == Shape::SpanSwap || self.shape == Shape::TriggerSearch {
                    m.extend([AttackSuccessRate, AccuracyBefore, PerturbedAccuracy]);
                    match self.attack.kind.expectation() {
                        Expectation::Invariant => m.push(AccuracyAfter),
                        Expectation::FlipFromGold => m.extend([ExpectedDirectionRate, IgnoredRate]),
                    }
                } else if self.attack.kind.expectation() == Expectation::FlipFromGold {
                    m.push(IgnoredRate);
                }
                m
            }
        }
    }
}

/// What the model folder is, without loading the model: decided by the folder alone
/// ([`ModelKind::of_dir`]), as `robust eval` and loading decide it.
pub(super) fn model_shape(dir: &Path) -> Result<ModelKind, EngineError> {
    ModelKind::of_dir(dir).map_err(|source| EngineError::Model {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Check a spec and decide its shape from the kind and the model folder, with the built-in
/// kinds. `origin` names the recipe file (or "flags", or a suite entry) in errors.
pub fn plan(spec: &AttackSpec, origin: &str) -> Result<Plan, EngineError> {
    plan_with(&Registry::builtin(), spec, origin)
}

/// [`plan`] with the kinds of `registry`: the spec's kind is looked up there, checks the spec
/// and picks the engine ([`crate::attack::kind::Attack::shape`]).
pub fn plan_with(
    registry: &Registry,
    spec: &AttackSpec,
    origin: &str,
) -> Result<Plan, EngineError> {
    let attack = spec.resolve_with(registry, origin)?;
    let model_kind = model_shape(&attack.model)?;
    let shape =
        attack
            .attack
            .shape(model_kind, spec)
            .map_err(|problem| EngineError::Unsupported {
                dir: attack.model.clone(),
                problem,
            })?;
    if shape == Shape::SpanSwap && attack.name_swap.is_none() {
        return Err(EngineError::Input {
            path: PathBuf::from(crate::attack::spec::DEFAULT_NAME_FREQUENCY),
            problem: "not found: name swaps on span rows need the name-frequency table (run \
                      from the repository root, or set name_frequency / --name-frequency)"
                .into(),
        });
    }
    let mut attack = attack;
    if shape == Shape::TriggerSearch {
        resolve_exclusions(spec, &mut attack, origin)?;
    }
    if spec.pair_col.is_some() {
        let refused = match shape {
            Shape::SpanSwap => Some("span rows (GAP) are single texts"),
            Shape::ClozeProbe => Some("cloze items are single texts"),
            Shape::TriggerSearch if spec.trigger.is_none() => Some(
                "the trigger search places trigger ids in single-segment inputs; search on \
                 single texts and evaluate the trigger on the pairs with --trigger",
            ),
            _ => None,
        };
        if let Some(reason) = refused {
            return Err(EngineError::Unsupported {
                dir: attack.model.clone(),
                problem: format!(
                    "cannot run {} on sentence pairs (pair_col): {reason}",
                    attack.kind.as_str()
                ),
            });
        }
    } else if spec.segment == Some(crate::perturb::Segment::Second) {
        return Err(EngineError::Input {
            path: attack.corpus.clone(),
            problem: "segment = \"second\" needs a pair column (pair_col / --pair-col)".into(),
        });
    }
    if let Some(pair_col) = &spec.pair_col {
        // Reports say which segment of each pair was attacked.
        attack
            .parameters
            .insert("pair_col".into(), pair_col.clone());
        attack.parameters.insert(
            "segment".into(),
            spec.segment.unwrap_or_default().as_str().into(),
        );
    }
    let top_k = spec.top_k.unwrap_or(5);
    if shape == Shape::ClozeProbe && top_k == 0 {
        return Err(RecipeError::Invalid {
            origin: origin.to_string(),
            key: "top_k",
            value: "0".into(),
            problem: "must be at least 1".into(),
        }
        .into());
    }
    Ok(Plan {
        attack,
        shape,
        columns: Columns {
            text: spec.text_col.clone(),
            label: spec.label_col.clone(),
            pair: spec.pair_col.clone(),
            require_label: false,
        },
        top_k,
        segment: spec.segment.unwrap_or_default(),
    })
}

/// The word lists a trigger search keeps out of its triggers: those the spec names, `none`
/// for none, or by default, for a model whose labels include positive and negative, the
/// opinion lexicons robust knows as exclusion sources (Wallace et al. kept sentiment words out
/// of their SST-2 triggers, since a trigger that says "awful" is not fooling anyone). Then how
/// far the exclusion reaches: the listed words' WordNet base forms and neighbours, and, on a
/// sentiment model, words an independent sentence encoder scores as evaluative (issue 29).
/// With no exclusion nothing is recorded beyond `exclude=none`, so such a search is the one
/// robust ran before.
pub(super) fn resolve_exclusions(
    spec: &AttackSpec,
    attack: &mut ResolvedAttack,
    origin: &str,
) -> Result<(), EngineError> {
    use crate::attack::spec::ExclusionList;
    use crate::attack::trigger::{Exclusion, PolarityFilter};
    use crate::attack::word::recipe::MinSimilarity;
    use crate::lexicon::opinion::SOURCES;
    use crate::lexicon::polarity::DEFAULT_THRESHOLD;
    let Some(settings) = attack.trigger.as_mut() else {
        return Ok(());
    };
    if settings.given.is_some() {
        return Ok(());
    }
    let read = |paths: &[PathBuf]| -> Result<Vec<ExclusionList>, EngineError> {
        Ok(paths
            .iter()
            .map(|p| ExclusionList::read(p))
            .collect::<Result<_, _>>()?)
    };
    let info =
        crate::model::ModelInfo::read(&attack.model).map_err(|source| EngineError::Model {
            dir: attack.model.clone(),
            source,
        })?;
    let has = |l: &str| info.labels.iter().any(|x| x.eq_ignore_ascii_case(l));
    let sentiment = has("positive") && has("negative");
    settings.exclude = match &spec.exclude {
        Some(list) if list.iter().all(|p| p.as_os_str() == "none") => Vec::new(),
        Some(list) => read(list)?,
        None if sentiment => {
            let mut lists = Vec::new();
            for source in SOURCES.iter() {
                let path = source.repo_path();
                let found = source.find().map_err(|e| EngineError::Input {
                    path: path.clone(),
                    problem: format!("could not read the opinion lexicon: {e}"),
                })?;
                let Some(found) = found else {
                    return Err(EngineError::Input {
                        path,
                        problem: format!(
                            "not found (looked in {}): the default trigger exclusion on \
                             sentiment models is built from {} opinion lexicons, and `{}` is \
                             fetched by scripts/setup (run it, or put the file in \
                             $ROBUST_DATA_DIR/opinion/); or name lists with --exclude FILE, or \
                             search without exclusion with --exclude none",
                            source.looked_in(),
                            SOURCES.len(),
                            source.name
                        ),
                    });
                };
                lists.push(ExclusionList::from_bytes(&found.path, &found.bytes)?);
            }
            lists
        }
        None => Vec::new(),
    };
    let polarity = match spec.polarity_threshold {
        Some(MinSimilarity::None) => None,
        Some(MinSimilarity::At(t)) => Some(t),
        None if sentiment && !settings.exclude.is_empty() => Some(DEFAULT_THRESHOLD),
        None => None,
    };
    if let Some(t) = polarity
        && !(t.is_finite() && t > 0.0)
    {
        return Err(EngineError::from(
            crate::attack::spec::RecipeError::Invalid {
                origin: origin.to_string(),
                key: "polarity_threshold",
                value: t.to_string(),
                problem: "must be a positive number, or none".into(),
            },
        ));
    }
    let lists_on = !settings.exclude.is_empty();
    let forms = lists_on && spec.exclude_forms.unwrap_or(true);
    let propagation = if lists_on {
        spec.exclude_propagation.unwrap_or(1)
    } else {
        0
    };
    let wordnet = if forms || propagation > 0 {
        Some(crate::attack::word::recipe::wordnet(spec, origin)?)
    } else {
        None
    };
    let polarity = match polarity {
        Some(threshold) => {
            let encoder = crate::attack::word::recipe::sentence_encoder_dir(
                spec,
                origin,
                "the trigger's polarity filter",
                "turn the filter off with --polarity-threshold none",
            )?;
            if !encoder.join("model.onnx").is_file() {
                return Err(EngineError::Input {
                    path: encoder,
                    problem: "has no model.onnx: the polarity filter needs a sentence-encoder \
                              folder (--sentence-encoder DIR), or turn it off with \
                              --polarity-threshold none"
                        .into(),
                });
            }
            Some(PolarityFilter { encoder, threshold })
        }
        None => None,
    };
    if !lists_on && polarity.is_none() {
        attack.parameters.insert("exclude".into(), "none".into());
        return Ok(());
    }
    attack.parameters.insert(
        "exclude".into(),
        if lists_on {
            settings
                .exclude
                .iter()
                .map(ExclusionList::describe)
                .collect::<Vec<_>>()
                .join(" | ")
        } else {
            "none".into()
        },
    );
    if lists_on {
        attack
            .parameters
            .insert("exclude_forms".into(), forms.to_string());
        attack
            .parameters
            .insert("exclude_propagation".into(), propagation.to_string());
        if let Some(w) = &wordnet {
            let source = w.source();
            attack.parameters.insert(
                "wordnet_sha256".into(),
                source.sha256[..source.sha256.len().min(12)].to_string(),
            );
        }
    }
    match &polarity {
        Some(p) => {
            attack
                .parameters
                .insert("polarity_threshold".into(), p.threshold.to_string());
            let sha =
                crate::model::model_sha256(&p.encoder).map_err(|source| EngineError::Model {
                    dir: p.encoder.clone(),
                    source,
                })?;
            attack.parameters.insert(
                "sentence_encoder_sha256".into(),
                sha[..sha.len().min(12)].to_string(),
            );
        }
        None => {
            attack
                .parameters
                .insert("polarity_threshold".into(), "none".into());
        }
    }
    settings.exclusion = Exclusion {
        wordnet,
        forms,
        propagation,
        polarity,
    };
    Ok(())
}

/// Loaded models, kept across attacks so that a suite loads each folder once.
pub struct Models {
    options: InferenceOptions,
    classifiers: HashMap<PathBuf, Classifier>,
    coref: HashMap<PathBuf, CorefModel>,
    fill_mask: HashMap<PathBuf, MaskedLm>,
    /// sha256 by folder: a model file is hashed once, however many jobs run on it.
    shas: HashMap<PathBuf, String>,
}

impl Models {
    /// No models loaded yet; each loads with `options` when first asked for.
    pub fn new(options: InferenceOptions) -> Self {
        Self {
            options,
            classifiers: HashMap::new(),
            coref: HashMap::new(),
            fill_mask: HashMap::new(),
            shas: HashMap::new(),
        }
    }

    /// Digests already known (a suite hashes every model before its first job), so that jobs
    /// do not read the model files again.
    pub fn with_known_shas(mut self, shas: impl IntoIterator<Item = (PathBuf, String)>) -> Self {
        self.shas.extend(shas);
        self
    }

    /// sha256 of the model in `dir` (of `model.onnx` and its external data), read once.
    pub fn sha256(&mut self, dir: &Path) -> Result<String, EngineError> {
        if let Some(sha) = self.shas.get(dir) {
            return Ok(sha.clone());
        }
        let sha = crate::model::model_sha256(dir).map_err(Self::load_err(dir))?;
        self.shas.insert(dir.to_path_buf(), sha.clone());
        Ok(sha)
    }

    /// The options every model is loaded with.
    pub fn options(&self) -> &InferenceOptions {
        &self.options
    }

    fn load_err(dir: &Path) -> impl FnOnce(ModelError) -> EngineError + '_ {
        move |source| EngineError::Model {
            dir: dir.to_path_buf(),
            source,
        }
    }

    /// The classifier in `dir`, loaded on first use.
    pub fn classifier(&mut self, dir: &Path) -> Result<&mut Classifier, EngineError> {
        if !self.classifiers.contains_key(dir) {
            let model = Classifier::load(dir, self.options.clone()).map_err(Self::load_err(dir))?;
            self.classifiers.insert(dir.to_path_buf(), model);
        }
        Ok(self.classifiers.get_mut(dir).expect("inserted just above"))
    }

    /// The coreference model (classifier + span template) in `dir`, loaded on first use.
    pub fn coref(&mut self, dir: &Path) -> Result<&mut CorefModel, EngineError> {
        if !self.coref.contains_key(dir) {
            let classifier =
                Classifier::load(dir, self.options.clone()).map_err(Self::load_err(dir))?;
            self.coref
                .insert(dir.to_path_buf(), CorefModel::new(classifier)?);
        }
        Ok(self.coref.get_mut(dir).expect("inserted just above"))
    }

    /// The fill-mask model in `dir`, loaded on first use.
    pub fn masked_lm(&mut self, dir: &Path) -> Result<&mut MaskedLm, EngineError> {
        if !self.fill_mask.contains_key(dir) {
            let model = MaskedLm::load(dir, self.options.clone()).map_err(Self::load_err(dir))?;
            self.fill_mask.insert(dir.to_path_buf(), model);
        }
        Ok(self.fill_mask.get_mut(dir).expect("inserted just above"))
    }
}

impl Plan {
    /// Load the plan's model and run it once on a one-word input, so that a model that does
    /// not load, or whose output does not fit its labels, fails before any attack runs.
    pub fn preflight(&self, models: &mut Models) -> Result<(), EngineError> {
        let dir = &self.attack.model;
        let run_err = |source| EngineError::Run {
            dir: dir.clone(),
            source,
        };
        match self.shape {
            Shape::TextPerturbation | Shape::TriggerSearch => {
                let model = models.classifier(dir)?;
                model.predict(&["preflight"]).map_err(run_err)?;
                model.clear_cache();
            }
            Shape::SpanSwap => {
                let model = models.coref(dir)?;
                model.classifier.predict(&["preflight"]).map_err(run_err)?;
                model.classifier.clear_cache();
            }
            Shape::ClozeProbe => {
                let model = models.masked_lm(dir)?;
                let mask = model.mask_id();
                let input = crate::model::tokenize::TokenIds::single(vec![mask]);
                model.mask_log_probs(&[input]).map_err(run_err)?;
            }
        }
        Ok(())
    }
}
