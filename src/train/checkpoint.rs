//! Where a training run stands between two batches: everything the rest of
//! the run depends on, so a run continued from it gives the same bits as
//! one never stopped. The data order is not kept: it is the seeded shuffle
//! replayed up to the checkpoint's epoch.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use crate::model::fused::States;
use crate::state::StateValue;
use crate::tensors::{Tensor, TensorFile};

/// A state training left, with where it was left.
#[derive(Debug, Clone)]
pub struct TrainedState {
    pub epoch: usize,
    pub batch: Option<usize>,
    pub state: StateValue,
}

/// The epoch with the lowest validation loss so far (`keep_best`), as the
/// run stood at its end: what a run of that many epochs would have left.
#[derive(Debug, Clone)]
pub struct Best {
    /// The epoch (from 0) at whose end it was.
    pub epoch: usize,
    pub params: Vec<Vec<f32>>,
    pub carried: States,
    pub accuracy: Option<f32>,
}

/// A run between two batches.
pub struct Checkpoint {
    /// The epoch the next batch belongs to (from 0).
    pub epoch: usize,
    /// The next batch within that epoch (from 0).
    pub batch: usize,
    /// The parameters, in the trainer's flat order.
    pub params: Vec<Vec<f32>>,
    pub adam: Adam,
    /// The state the next batch starts from (stateful runs).
    pub carried: States,
    /// Mean loss of each finished epoch.
    pub losses: Vec<f32>,
    /// Every batch's loss so far.
    pub batch_losses: Vec<f32>,
    /// This epoch's loss sum and correct classes so far.
    pub loss_sum: f64,
    pub correct: usize,
    pub accuracy: Option<f32>,
    /// Validation loss after each finished epoch.
    pub val_losses: Vec<f32>,
    /// States recorded so far (`--record`). Kept beside the checkpoint's
    /// tensors, not in them: the store holds them as states.
    pub states: Vec<TrainedState>,
    /// The best epoch so far, with `keep_best`.
    pub best: Option<Best>,
}

/// The checkpoint's numbers that are not tensors, as its file's metadata.
#[derive(Serialize, Deserialize)]
struct Scalars {
    epoch: usize,
    batch: usize,
    adam_step: i32,
    losses: Vec<f32>,
    batch_losses: Vec<f32>,
    loss_sum: f64,
    correct: usize,
    accuracy: Option<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    val_losses: Vec<f32>,
    /// How many recorded states the run had made.
    recorded: usize,
    /// The best epoch so far (`keep_best`); its tensors are `best_*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    best_epoch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    best_accuracy: Option<f32>,
}

/// The metadata key of a checkpoint file; its value says the format.
const FORMAT_KEY: &str = "statectl_checkpoint";
const FORMAT: &str = "1";

fn name(kind: &str, index: usize) -> String {
    format!("{kind}.{index:04}")
}

impl Checkpoint {
    /// Batches run so far, over all epochs.
    pub fn batches_done(&self, batches_per_epoch: usize) -> usize {
        self.epoch * batches_per_epoch + self.batch
    }

    /// The tensors and scalars as a safetensors file: the same checkpoint
    /// always encodes to the same bytes, so it has one content id.
    pub fn to_file(&self) -> TensorFile {
        let mut file = TensorFile::default();
        let (m, v) = self.adam.moments();
        let best_params = self.best.as_ref().map_or(&[][..], |b| &b.params[..]);
        for (kind, list) in [
            ("param", &self.params[..]),
            ("adam_m", m),
            ("adam_v", v),
            ("best_param", best_params),
        ] {
            for (i, values) in list.iter().enumerate() {
                file.insert(
                    &name(kind, i),
                    Tensor::new(vec![values.len()], values.clone()),
                );
            }
        }
        insert_states(&mut file, "carried", &self.carried);
        if let Some(best) = &self.best {
            insert_states(&mut file, "best_carried", &best.carried);
        }
        let scalars = Scalars {
            epoch: self.epoch,
            batch: self.batch,
            adam_step: self.adam.step(),
            losses: self.losses.clone(),
            batch_losses: self.batch_losses.clone(),
            loss_sum: self.loss_sum,
            correct: self.correct,
            accuracy: self.accuracy,
            val_losses: self.val_losses.clone(),
            recorded: self.states.len(),
            best_epoch: self.best.as_ref().map(|b| b.epoch),
            best_accuracy: self.best.as_ref().and_then(|b| b.accuracy),
        };
        file.metadata.insert(FORMAT_KEY.into(), FORMAT.into());
        file.metadata.insert(
            "scalars".into(),
            serde_json::to_string(&scalars).unwrap_or_default(),
        );
        file
    }

    /// Reads a checkpoint written by [`Checkpoint::to_file`] for a run whose
    /// parameters have `sizes` and whose carried state is shaped like
    /// `carried`. Returns it (with no recorded states yet) and how many
    /// recorded states it counts.
    pub fn from_file(
        file: &TensorFile,
        lr: f32,
        sizes: &[usize],
        carried: &States,
    ) -> Result<(Checkpoint, usize)> {
        if file.metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
            bail!("it is not a statectl training checkpoint (format {FORMAT})");
        }
        let scalars: Scalars = serde_json::from_str(
            file.metadata
                .get("scalars")
                .ok_or_else(|| anyhow!("its scalars are missing"))?,
        )
        .map_err(|e| anyhow!("its scalars are unreadable ({e})"))?;
        let list = |kind: &str| -> Result<Vec<Vec<f32>>> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| take(file, &name(kind, i), size))
                .collect()
        };
        let (params, m, v) = (list("param")?, list("adam_m")?, list("adam_v")?);
        let best = match scalars.best_epoch {
            Some(epoch) => Some(Best {
                epoch,
                params: list("best_param")?,
                carried: take_states(file, "best_carried", carried)?,
                accuracy: scalars.best_accuracy,
            }),
            None => None,
        };
        let checkpoint = Checkpoint {
            epoch: scalars.epoch,
            batch: scalars.batch,
            params,
            adam: Adam::resumed(lr, scalars.adam_step, m, v),
            carried: take_states(file, "carried", carried)?,
            losses: scalars.losses,
            batch_losses: scalars.batch_losses,
            loss_sum: scalars.loss_sum,
            correct: scalars.correct,
            accuracy: scalars.accuracy,
            val_losses: scalars.val_losses,
            states: Vec::new(),
            best,
        };
        Ok((checkpoint, scalars.recorded))
    }
}

/// A carried state's tensors, as `{kind}.{layer}.{k}`.
fn insert_states(file: &mut TensorFile, kind: &str, states: &States) {
    for (layer, tensors) in states.iter().enumerate() {
        for (k, values) in tensors.iter().enumerate() {
            let key = format!("{kind}.{layer:02}.{k}");
            file.insert(&key, Tensor::new(vec![values.len()], values.clone()));
        }
    }
}

/// The carried state `kind` of a file, shaped like `shape`.
fn take_states(file: &TensorFile, kind: &str, shape: &States) -> Result<States> {
    let mut restored = shape.clone();
    for (layer, tensors) in restored.iter_mut().enumerate() {
        for (k, values) in tensors.iter_mut().enumerate() {
            *values = take(file, &format!("{kind}.{layer:02}.{k}"), values.len())?;
        }
    }
    Ok(restored)
}

/// The tensor `key`, which must hold `len` values.
fn take(file: &TensorFile, key: &str, len: usize) -> Result<Vec<f32>> {
    let tensor = file
        .tensors
        .get(key)
        .ok_or_else(|| anyhow!("its tensor '{key}' is missing"))?;
    if tensor.data.len() != len {
        bail!(
            "its tensor '{key}' holds {} values where the run has {len}",
            tensor.data.len()
        );
    }
    Ok(tensor.data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many tensors of each kind a file holds.
    fn kinds(file: &TensorFile) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for n in file.names() {
            *out.entry(n.split('.').next().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
        out
    }

    fn sample() -> Checkpoint {
        let mut adam = Adam::new(0.01, &[3, 2]);
        let mut params = vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0]];
        adam.update(&mut params, &[vec![0.5, -0.5, 0.25], vec![1.0, -1.0]]);
        Checkpoint {
            epoch: 1,
            batch: 2,
            params,
            adam,
            carried: vec![vec![vec![0.1, 0.2], vec![0.3, 0.4]]],
            losses: vec![0.7],
            batch_losses: vec![0.9, 0.8, 0.1 + 0.2],
            loss_sum: 0.1 + 0.2,
            correct: 3,
            accuracy: Some(0.25),
            val_losses: vec![0.5],
            states: Vec::new(),
            best: None,
        }
    }

    #[test]
    fn a_checkpoint_reads_back_to_the_same_bits() {
        let cp = sample();
        let file = cp.to_file();
        assert_eq!(kinds(&file).get("adam_m"), Some(&2));
        let bytes = file.encode();
        let decoded = TensorFile::decode(&bytes).unwrap();
        let (back, recorded) = Checkpoint::from_file(&decoded, 0.01, &[3, 2], &cp.carried).unwrap();
        assert_eq!(recorded, 0);
        assert_eq!(back.to_file().encode(), bytes);
        assert_eq!(back.loss_sum.to_bits(), cp.loss_sum.to_bits());
        assert_eq!(back.adam.step(), 1);
    }

    #[test]
    fn the_best_epoch_reads_back_and_a_checkpoint_without_one_has_none() {
        let mut cp = sample();
        cp.best = Some(Best {
            epoch: 0,
            params: vec![vec![7.0, 8.0, 9.0], vec![1.5, 2.5]],
            carried: vec![vec![vec![0.5, 0.6], vec![0.7, 0.8]]],
            accuracy: Some(0.5),
        });
        let bytes = cp.to_file().encode();
        let decoded = TensorFile::decode(&bytes).unwrap();
        let (back, _) = Checkpoint::from_file(&decoded, 0.01, &[3, 2], &cp.carried).unwrap();
        let best = back.best.as_ref().unwrap();
        assert_eq!((best.epoch, best.accuracy), (0, Some(0.5)));
        assert_eq!(best.params, cp.best.as_ref().unwrap().params);
        assert_eq!(back.to_file().encode(), bytes);
        let (plain, _) =
            Checkpoint::from_file(&sample().to_file(), 0.01, &[3, 2], &cp.carried).unwrap();
        assert!(plain.best.is_none());
    }

    #[test]
    fn a_checkpoint_for_another_shape_is_refused() {
        let cp = sample();
        let err = Checkpoint::from_file(&cp.to_file(), 0.01, &[3, 3], &cp.carried)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("'param.0001' holds 2 values"),
            "{err}"
        );
        let mut plain = cp.to_file();
        plain.metadata.clear();
        assert!(Checkpoint::from_file(&plain, 0.01, &[3, 2], &cp.carried).is_err());
    }
}
