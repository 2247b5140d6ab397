//! Train-and-record: run a training plan (outside any transaction), then
//! record the weights, the model row, the data object, the training states
//! and events, and the `main` stream at the final state, in one
//! transaction.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::models::{self, Model, Registration};
use super::streams::{self, Expect};
use crate::id::{Digest, ObjectId, WeightsId};
use crate::model::{ModelConfig, Weights};
use crate::state::Cell;
use crate::store::{NewEvent, Store};
use crate::tensors::TensorFile;
use crate::train::{
    alphabet, dataset_from_safetensors, keras_init, train, Dataset, Progress, TrainConfig,
    TrainReport,
};

/// Where the initial weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InitSource {
    /// Keras's initialisers drawn from this seed.
    Seed { seed: u64 },
    /// A weights file kept in the store (hex id); `model` names the stored
    /// model it came from (`train --from`), for the lineage.
    Weights {
        weights: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
}

/// Everything a training run is made of, as recorded with it.
pub struct TrainPlan {
    pub data: Dataset,
    pub train: TrainConfig,
    pub init: Weights,
    pub init_source: InitSource,
}

/// What a trained model's row records, so `audit --train` can rerun it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub train: TrainConfig,
    pub init: InitSource,
    /// Hex id of the training data object.
    pub data: String,
    /// Mean loss of each epoch.
    pub losses: Vec<f32>,
    /// Every batch's loss, kept with `--record batch` (for `plot loss`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_losses: Vec<f32>,
    pub accuracy: Option<f32>,
    /// Validation loss after each epoch (with a validation split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_losses: Vec<f32>,
    /// The epoch (from 1) after which early stopping ended the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<usize>,
    pub samples: usize,
    /// The statectl version that trained it.
    pub statectl: String,
}

impl TrainingRecord {
    pub fn parse(model: &str, text: &str) -> Result<TrainingRecord> {
        serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "model '{model}' has an unreadable training record ({e}); run `statectl verify`"
            )
        })
    }
}

/// The reference experiment: alphabet data, LSTM(16) (or GRU(16)), softmax
/// over 27 classes, batch 6, 2 epochs, lr 1e-3, seed 42, stateful.
pub fn reference_plan(cell: Cell) -> TrainPlan {
    let data = alphabet();
    let config = ModelConfig {
        cell,
        input_size: 1,
        units: vec![16],
        output_size: 27,
        head: data.head(),
        outputs: crate::model::Outputs::Last,
        batch_size: 6,
    };
    let train = TrainConfig {
        batch_size: 6,
        epochs: 2,
        lr: 1e-3,
        seed: 42,
        stateful: true,
        shuffle: true,
        record: crate::train::RecordEvery::Epoch,
        kernel: crate::kernels::Kernel::default(),
        validation_split: None,
        validation_samples: None,
        patience: None,
        keep_best: false,
        lr_changes: Vec::new(),
    };
    TrainPlan {
        init: keras_init(&config, train.seed),
        init_source: InitSource::Seed { seed: train.seed },
        data,
        train,
    }
}

/// The model a new run trains: the architecture asked for, shaped by the
/// data (its features, outputs and per-step targets). A head that does not
/// fit the data's targets, or sizes over the documented limits, are refused.
pub fn model_config(
    data: &Dataset,
    cell: Cell,
    units: Vec<usize>,
    head: Option<crate::model::Head>,
    batch_size: usize,
) -> Result<ModelConfig> {
    let head = head.unwrap_or(data.head());
    if head != data.head() {
        anyhow::bail!(
            "a {} head does not fit the data's targets, which call for a {} head",
            head.name(),
            data.head().name()
        );
    }
    crate::limits::check_units(&units)?;
    crate::limits::check_batch(batch_size)?;
    Ok(ModelConfig {
        cell,
        input_size: data.features(),
        units,
        output_size: data.outputs(),
        head,
        outputs: if data.per_step {
            crate::model::Outputs::Sequence
        } else {
            crate::model::Outputs::Last
        },
        batch_size,
    })
}

/// A recorded plan read back from the store: the training data object
/// (hex id) and the initial weights (drawn again from the seed, or the
/// stored file), for `audit --train` and `train --resume`.
pub fn stored_plan(
    store: &mut super::backend::Backend,
    config: &ModelConfig,
    train: &TrainConfig,
    init_source: &InitSource,
    data_hex: &str,
) -> Result<TrainPlan> {
    let data_id = Digest::parse_hex(data_hex).ok_or_else(|| {
        anyhow::anyhow!("the recorded training data id '{data_hex}' is not an id")
    })?;
    let data_file = TensorFile::decode(&store.object(&ObjectId(data_id))?)?;
    let per_step = config.outputs == crate::model::Outputs::Sequence;
    let data = dataset_from_safetensors(&data_file, Some(config.head), None, per_step)?;
    let init = match init_source {
        InitSource::Seed { seed } => keras_init(config, *seed),
        InitSource::Weights { weights: hex, .. } => {
            let id = WeightsId(
                Digest::parse_hex(hex)
                    .ok_or_else(|| anyhow::anyhow!("bad init weights id '{hex}'"))?,
            );
            let mut w = Weights::from_file(&TensorFile::decode(&store.weights_file(&id)?)?)?;
            w.config = config.clone();
            w
        }
    };
    Ok(TrainPlan {
        data,
        train: train.clone(),
        init,
        init_source: init_source.clone(),
    })
}

/// Runs the plan; `progress` sees every batch.
pub fn run(plan: &TrainPlan, progress: &mut dyn FnMut(&Progress)) -> Result<TrainReport> {
    train(&plan.data, &plan.train, plan.init.clone(), &mut |p| {
        progress(&p)
    })
}

/// The id the recorded weights will have.
pub fn weights_id(weights: &Weights) -> WeightsId {
    WeightsId(Digest::of(&[&weights.to_file().encode()]))
}

/// Records what training made. Call inside a write; on an error the caller
/// rolls back (a weights file this call created is removed first).
pub fn record_in(
    store: &Store,
    name: &str,
    replace: bool,
    plan: &TrainPlan,
    report: &TrainReport,
) -> Result<Model> {
    let data_bytes = plan.data.to_file().encode();
    let record = TrainingRecord {
        train: plan.train.clone(),
        init: plan.init_source.clone(),
        data: Digest::of(&[&data_bytes]).hex(),
        losses: report.losses.clone(),
        batch_losses: if plan.train.record == crate::train::RecordEvery::Batch {
            report.batch_losses.clone()
        } else {
            Vec::new()
        },
        accuracy: report.accuracy,
        val_losses: report.val_losses.clone(),
        stopped_early: report.stopped_early,
        samples: plan.data.len(),
        statectl: env!("CARGO_PKG_VERSION").into(),
    };
    // Serialised from the struct, not through a JSON value, so f32 fields
    // keep their short form (`"lr": 0.001`, not 0.0010000000474974513).
    let training_text = serde_json::to_string(&record)?;
    let training: serde_json::Value = serde_json::from_str(&training_text)?;
    let (model, created) = models::register_in(
        store,
        &Registration {
            name,
            weights: &report.weights,
            training: Some(&training_text),
            replace,
        },
    )?;
    let mut init_created = None;
    let result = (|| -> Result<()> {
        // The init weights are kept so `audit --train` can rerun from them.
        if let InitSource::Weights { .. } = plan.init_source {
            let (id, new) = store.put_weights(&plan.init.to_file().encode())?;
            init_created = new.then_some(id);
        }
        let data = store.put_object(&data_bytes)?;
        for trained in &report.states {
            let id = store.put_state(&trained.state)?;
            store.append_event(&NewEvent {
                kind: "train",
                model: model.event_model(),
                state_after: Some(id),
                input: Some(data),
                detail: json!({"epoch": trained.epoch + 1, "batch": trained.batch.map(|b| b + 1)}),
                ..Default::default()
            })?;
        }
        let final_id = store.put_state(&report.final_state)?;
        streams::move_stream(
            store,
            &model,
            "main",
            final_id,
            Expect::Any,
            NewEvent {
                kind: "train",
                input: Some(data),
                detail: json!({"final": true, "training": training}),
                ..Default::default()
            },
        )?;
        Ok(())
    })();
    if let Err(e) = result {
        models::forget_created(store, created);
        models::forget_created(store, init_created);
        return Err(e);
    }
    Ok(model)
}

/// Trains nothing: records a finished run in its own transaction.
pub fn record(
    store: &Store,
    name: &str,
    replace: bool,
    plan: &TrainPlan,
    report: &TrainReport,
) -> Result<Model> {
    store.write(|store| record_in(store, name, replace, plan, report))
}
