//! Training data: the reference "alphabet" set, safetensors files (`x`
//! and `y`), and CSV time series cut into windows.

use anyhow::{anyhow, bail, Result};

use crate::model::Head;
use crate::tensors::{Tensor, TensorFile};

#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per sample (per step of each sample, row-major, for
    /// per-step targets).
    Classes { labels: Vec<usize>, classes: usize },
    /// `[n, outputs]` regression targets, or `[n, steps, outputs]`.
    Values(Tensor),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `[n, steps, features]`.
    pub x: Tensor,
    pub targets: Targets,
    /// A target for every step (a model with per-step outputs), not only
    /// the last.
    pub per_step: bool,
}

impl Dataset {
    /// Appends `other`'s samples (held-out validation samples after the
    /// training ones); its samples must have this set's shape and targets.
    pub fn append(&mut self, other: Dataset) -> Result<(), String> {
        if other.x.shape[1..] != self.x.shape[1..] || other.per_step != self.per_step {
            return Err(format!(
                "its samples are {:?} (steps, features{}) where the training data's are {:?}{}",
                &other.x.shape[1..],
                if other.per_step {
                    ", a target per step"
                } else {
                    ""
                },
                &self.x.shape[1..],
                if self.per_step {
                    " with a target per step"
                } else {
                    ""
                },
            ));
        }
        match (&mut self.targets, other.targets) {
            (Targets::Classes { labels, classes }, Targets::Classes { labels: more, .. }) => {
                if let Some(bad) = more.iter().find(|l| **l >= *classes) {
                    return Err(format!(
                        "it has class {bad}, which the training data's {classes} classes lack"
                    ));
                }
                labels.extend(more);
            }
            (Targets::Values(y), Targets::Values(more)) if more.shape[1..] == y.shape[1..] => {
                y.data.extend(more.data);
                y.shape[0] += more.shape[0];
            }
            _ => {
                return Err(
                    "its targets are not of the training data's kind and width (classes or values)"
                        .into(),
                )
            }
        }
        self.x.data.extend(other.x.data);
        self.x.shape[0] += other.x.shape[0];
        Ok(())
    }

    /// Keeps the first `n` samples.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        let per_sample: usize = self.x.shape[1..].iter().product();
        self.x.data.truncate(n * per_sample);
        self.x.shape[0] = n;
        let per_sample_targets = if self.per_step { self.steps() } else { 1 };
        match &mut self.targets {
            Targets::Classes { labels, .. } => labels.truncate(n * per_sample_targets),
            Targets::Values(y) => {
                let width: usize = y.shape[1..].iter().product();
                y.data.truncate(n * width);
                y.shape[0] = n;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.x.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn steps(&self) -> usize {
        self.x.shape[1]
    }

    pub fn features(&self) -> usize {
        self.x.shape[2]
    }

    pub fn outputs(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values(t) => *t.shape.last().unwrap_or(&1),
        }
    }

    /// Targets per sample: its steps for per-step targets, else 1.
    pub fn targets_per_sample(&self) -> usize {
        if self.per_step {
            self.steps()
        } else {
            1
        }
    }

    pub fn head(&self) -> Head {
        match self.targets {
            Targets::Classes { .. } => Head::Softmax,
            Targets::Values(_) => Head::Linear,
        }
    }

    /// The data as one safetensors object (`x`, and `y` as class indices or
    /// values), so a train event can name exactly what it learnt from.
    pub fn to_file(&self) -> TensorFile {
        let mut file = TensorFile::default();
        file.insert("x", self.x.clone());
        match &self.targets {
            Targets::Classes { labels, classes } => {
                let mut onehot = vec![0.0; labels.len() * classes];
                for (i, l) in labels.iter().enumerate() {
                    onehot[i * classes + l] = 1.0;
                }
                let shape = if self.per_step {
                    vec![self.len(), self.steps(), *classes]
                } else {
                    vec![labels.len(), *classes]
                };
                file.insert("y", Tensor::new(shape, onehot));
            }
            Targets::Values(t) => file.insert("y", t.clone()),
        }
        file
    }
}

/// The reference experiment's data: letters A..Z then A again (27
/// symbols), windows of 3 indices / 27 as inputs `[24, 3, 1]`, the next
/// index as one of 27 classes.
pub fn alphabet() -> Dataset {
    let n = 24;
    let mut x = Vec::with_capacity(n * 3);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        for k in 0..3 {
            x.push(((i + k) as f64 / 27.0) as f32);
        }
        labels.push(i + 3);
    }
    Dataset {
        x: Tensor::new(vec![n, 3, 1], x),
        targets: Targets::Classes {
            labels,
            classes: 27,
        },
        per_step: false,
    }
}

/// Most classes (or outputs) a head may have: a typo or a stray value must
/// not allocate a head of billions of outputs.
pub const MAX_CLASSES: usize = 1 << 16;

fn class_index(value: f32, classes: Option<usize>, what: &str) -> Result<usize> {
    if value < 0.0 || value.fract() != 0.0 {
        bail!("{what} is {value}, not a class index (a whole number from 0)");
    }
    if value >= MAX_CLASSES as f32 {
        bail!("{what} is class {value}, beyond the largest supported class index {}; class indices count from 0", MAX_CLASSES - 1);
    }
    let index = value as usize;
    if let Some(classes) = classes {
        if index >= classes {
            bail!(
                "{what} is class {index}, out of range for {classes} classes (0..{})",
                classes - 1
            );
        }
    }
    Ok(index)
}

fn labels_from(values: &[f32], classes: Option<usize>) -> Result<Targets> {
    let labels = values
        .iter()
        .enumerate()
        .map(|(i, v)| class_index(*v, classes, &format!("target {i}")))
        .collect::<Result<Vec<_>>>()?;
    let classes = classes.unwrap_or_else(|| labels.iter().max().map(|m| m + 1).unwrap_or(1));
    Ok(Targets::Classes { labels, classes })
}

/// Reads one-hot rows as class indices, or keeps values, as `head` (or,
/// without one, the data) says.
fn targets_of(y: &Tensor, width: usize, head: Option<Head>) -> Result<Targets> {
    let onehot = y.data.chunks(width).all(|row| {
        row.iter().filter(|v| **v == 1.0).count() == 1 && row.iter().all(|v| *v == 0.0 || *v == 1.0)
    });
    if head == Some(Head::Softmax) || (head.is_none() && onehot) {
        if !onehot {
            bail!("training data 'y' is not one-hot, so it cannot train a softmax head; use --head linear for regression");
        }
        let labels = y
            .data
            .chunks(width)
            .map(|row| row.iter().position(|v| *v == 1.0).unwrap_or(0))
            .collect();
        Ok(Targets::Classes {
            labels,
            classes: width,
        })
    } else {
        Ok(Targets::Values(y.clone()))
    }
}

/// `x` `[n, steps, features]` and `y` as `[n]` class indices, `[n, classes]`
/// one-hot, or `[n, outputs]` values; `head` forces the reading of a 2-D `y`.
/// Per-step targets (`per_step`, or any 3-D `y`): `y` as `[n, steps]` class
/// indices, or `[n, steps, classes]` one-hot, or `[n, steps, outputs]`.
pub fn dataset_from_safetensors(
    file: &TensorFile,
    head: Option<Head>,
    classes: Option<usize>,
    per_step: bool,
) -> Result<Dataset> {
    let x = file
        .tensors
        .get("x")
        .ok_or_else(|| anyhow!("training data has no tensor 'x' [n, steps, features]"))?;
    let y = file.tensors.get("y").ok_or_else(|| {
        anyhow!("training data has no tensor 'y' (class indices, one-hot, or targets)")
    })?;
    if x.shape.len() != 3 || x.shape.contains(&0) {
        bail!(
            "training data 'x' has shape {}, expected [n, steps, features]",
            x.shape_text()
        );
    }
    let n = x.shape[0];
    if y.shape.first() != Some(&n) {
        bail!(
            "training data 'y' has shape {} but 'x' has {n} samples; they must match",
            y.shape_text()
        );
    }
    if x.data.iter().chain(&y.data).any(|v| !v.is_finite()) {
        bail!("training data holds NaN or infinite values");
    }
    let width = *y.shape.last().unwrap_or(&0);
    if y.shape.len() >= 2 && (width == 0 || width > MAX_CLASSES) {
        bail!(
            "training data 'y' has shape {}: give 1 to {MAX_CLASSES} outputs per sample",
            y.shape_text()
        );
    }
    let steps = x.shape[1];
    let per_step = per_step || y.shape.len() == 3;
    if per_step && y.shape.len() == 1 {
        bail!(
            "per-step outputs need a target per step: 'y' is {}; give [n, {steps}] class indices or [n, {steps}, outputs]",
            y.shape_text()
        );
    }
    if per_step && y.shape.get(1) != Some(&steps) {
        bail!(
            "per-step targets 'y' {} do not match 'x' {}: give one target per step, y as [n, {steps}] class indices or [n, {steps}, outputs]",
            y.shape_text(),
            x.shape_text()
        );
    }
    let targets = match (y.shape.len(), per_step) {
        (1, false) => labels_from(&y.data, classes)?,
        (2, false) => targets_of(y, width, head)?,
        // [n, steps] class indices, one per step.
        (2, true) => labels_from(&y.data, classes)?,
        (3, true) => targets_of(y, width, head)?,
        (1, true) => bail!(
            "per-step outputs need a target per step: 'y' is {}; give [n, {steps}] class indices or [n, {steps}, outputs]",
            y.shape_text()
        ),
        _ => bail!(
            "training data 'y' has shape {}, expected [n], [n, outputs], or per step [n, steps] or [n, steps, outputs]",
            y.shape_text()
        ),
    };
    Ok(Dataset {
        x: x.clone(),
        targets,
        per_step,
    })
}

/// A CSV time series (rows = time steps, columns = features, optional
/// header) cut into windows of `seq_len` rows; the target is column
/// `target` of the row after each window: a value, or with `classes` a
/// class index.
pub fn dataset_from_csv(
    bytes: &[u8],
    source: &str,
    seq_len: usize,
    stride: usize,
    target: usize,
    classes: Option<usize>,
    per_step: bool,
) -> Result<Dataset> {
    let rows = crate::input::parse_csv(bytes, source)?;
    let width = rows.first().map(|r| r.len()).unwrap_or(0);
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
        bail!(
            "{source} is ragged: row 1 has {width} column(s) but row {} has {}",
            i + 1,
            r.len()
        );
    }
    if rows.len() <= seq_len {
        bail!(
            "{source} has {} row(s) but --seq-len {seq_len} needs at least {} (a window plus its target row)",
            rows.len(),
            seq_len + 1
        );
    }
    if target >= width {
        bail!("--target {target} is out of range: {source} has {width} column(s), numbered from 0");
    }
    // Windows start every `stride` rows while a target row follows them.
    let stride = stride.max(1);
    let n = (rows.len() - seq_len - 1) / stride + 1;
    let mut x = Vec::with_capacity(n * seq_len * width);
    let mut y = Vec::with_capacity(n);
    for i in (0..n).map(|k| k * stride) {
        for row in &rows[i..i + seq_len] {
            x.extend_from_slice(row);
        }
        if per_step {
            // The target of each step is the next row's value.
            y.extend(rows[i + 1..=i + seq_len].iter().map(|r| r[target]));
        } else {
            y.push(rows[i + seq_len][target]);
        }
    }
    let targets = match classes {
        Some(_) => labels_from(&y, classes)?,
        None if per_step => Targets::Values(Tensor::new(vec![n, seq_len, 1], y)),
        None => Targets::Values(Tensor::new(vec![n, 1], y)),
    };
    Ok(Dataset {
        x: Tensor::new(vec![n, seq_len, width], x),
        targets,
        per_step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_windows_predict_the_next_row() {
        let csv = b"v\n0\n1\n2\n3\n4\n";
        let d = dataset_from_csv(csv, "t", 3, 1, 0, None, false).unwrap();
        assert_eq!(d.x.shape, vec![2, 3, 1]);
        assert_eq!(
            d.targets,
            Targets::Values(Tensor::new(vec![2, 1], vec![3.0, 4.0]))
        );
        assert!(dataset_from_csv(csv, "t", 5, 1, 0, None, false).is_err());
        assert!(dataset_from_csv(csv, "t", 2, 1, 0, Some(3), false).is_err());
        // Per step: each step's target is the next row.
        let d = dataset_from_csv(csv, "t", 3, 1, 0, None, true).unwrap();
        assert_eq!(
            d.targets,
            Targets::Values(Tensor::new(
                vec![2, 3, 1],
                vec![1.0, 2.0, 3.0, 2.0, 3.0, 4.0]
            ))
        );
        // Stride 2: windows start at rows 0 and 2 (one at row 4 would need a row 6).
        let csv = b"v\n0\n1\n2\n3\n4\n5\n";
        let d = dataset_from_csv(csv, "t", 2, 2, 0, None, false).unwrap();
        assert_eq!(d.x.data, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(
            d.targets,
            Targets::Values(Tensor::new(vec![2, 1], vec![2.0, 4.0]))
        );
    }
}
