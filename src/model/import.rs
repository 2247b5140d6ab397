//! Bringing outside weights in: PyTorch `nn.LSTM` + linear head names, or
//! Keras LSTM + Dense names (transposed; Keras's gate order i, f, c, o is
//! torch's i, f, g, o, so no blocks move).

use std::collections::BTreeMap;

use super::config::{Head, ModelConfig, Outputs};
use super::weights::{expect_shape, LayerWeights, ModelError, Weights, CONFIG_METADATA_KEY};
use crate::state::Cell;
use crate::tensors::{shape_text, Tensor, TensorFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsLayout {
    /// PyTorch / candle names: `*.weight_ih_l{k}`, `*.weight_hh_l{k}`, `*.bias_ih_l{k}`, `*.bias_hh_l{k}`, and a linear head.
    Torch,
    /// Keras names: `<layer>/kernel`, `<layer>/recurrent_kernel`, `<layer>/bias`, and a Dense layer.
    Keras,
}

fn get<'a>(file: &'a TensorFile, name: &str, hint: &str) -> Result<&'a Tensor, ModelError> {
    file.tensors
        .get(name)
        .ok_or_else(|| ModelError::MissingTensor {
            name: name.to_string(),
            hint: hint.to_string(),
        })
}

fn transpose(t: &Tensor) -> Tensor {
    Tensor::new(
        vec![t.shape[1], t.shape[0]],
        crate::tensors::transpose(&t.data, t.shape[0], t.shape[1]),
    )
}

fn finish(
    cell: Cell,
    layers: Vec<LayerWeights>,
    head_w: Tensor,
    head_b: Tensor,
    head: Head,
    batch_size: usize,
) -> Result<Weights, ModelError> {
    let units: Vec<usize> = layers.iter().map(|l| l.w_hh.shape[1]).collect();
    let weights = Weights {
        config: ModelConfig {
            cell,
            input_size: layers[0].w_ih.shape[1],
            units,
            output_size: head_w.shape[0],
            head,
            outputs: Outputs::Last,
            batch_size,
        },
        layers,
        head_w,
        head_b,
    };
    weights.validate()?;
    if weights.all_values().any(|v| !v.is_finite()) {
        return Err(ModelError::Layout(
            "weights hold NaN or infinite values; export them again from a healthy model".into(),
        ));
    }
    Ok(weights)
}

fn require_2d(name: &str, t: &Tensor) -> Result<(), ModelError> {
    if t.shape.len() != 2 || t.shape.contains(&0) {
        return Err(ModelError::Shape {
            name: name.to_string(),
            found: t.shape_text(),
            expected: "a non-empty 2-D shape".into(),
        });
    }
    Ok(())
}

/// The cell a layer's recurrent weights make: `gates` blocks of `h` (4 for
/// an LSTM, 3 for a GRU). `shape` is the tensor's shape as the file has it
/// (torch `[gH, H]`, Keras `[H, gH]`), for the message.
fn cell_of(name: &str, shape: &[usize], gate_rows: usize, h: usize) -> Result<Cell, ModelError> {
    match gate_rows.checked_div(h) {
        Some(4) if gate_rows.is_multiple_of(h) => Ok(Cell::Lstm),
        Some(3) if gate_rows.is_multiple_of(h) => Ok(Cell::Gru),
        _ => {
            let like = |g: usize| {
                if shape[0] == gate_rows {
                    shape_text(&[g * h, h])
                } else {
                    shape_text(&[h, g * h])
                }
            };
            Err(ModelError::Shape {
                name: name.to_string(),
                found: shape_text(shape),
                expected: format!("{} (LSTM) or {} (GRU)", like(4), like(3)),
            })
        }
    }
}

/// Reads PyTorch-layout weights: the LSTM or GRU tensors under any common
/// prefix (`lstm.`, `gru.`, `rnn.`, none) and one linear head
/// (`head.weight`/`head.bias`, or the one remaining 2-D weight and 1-D
/// bias). The cell is read from the shapes.
pub fn import_torch(
    file: &TensorFile,
    head: Head,
    batch_size: usize,
) -> Result<Weights, ModelError> {
    let hint = "torch layout wants `<prefix>weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0` (and for a GRU `bias_hh_l0`) per layer and a linear head; for Keras names use --layout keras";
    let prefix = file
        .names()
        .iter()
        .find_map(|n| n.strip_suffix("weight_ih_l0").map(str::to_string))
        .ok_or_else(|| ModelError::MissingTensor {
            name: "weight_ih_l0".into(),
            hint: hint.into(),
        })?;
    let mut layers = Vec::new();
    let mut used = Vec::new();
    let mut cell = None;
    for k in 0.. {
        let w_ih_name = format!("{prefix}weight_ih_l{k}");
        if !file.tensors.contains_key(&w_ih_name) {
            break;
        }
        let names = [
            w_ih_name,
            format!("{prefix}weight_hh_l{k}"),
            format!("{prefix}bias_ih_l{k}"),
            format!("{prefix}bias_hh_l{k}"),
        ];
        let w_ih = get(file, &names[0], hint)?;
        let w_hh = get(file, &names[1], hint)?;
        let bias_ih = get(file, &names[2], hint)?;
        require_2d(&names[0], w_ih)?;
        require_2d(&names[1], w_hh)?;
        let h = w_hh.shape[1];
        let this = cell_of(&names[1], &w_hh.shape, w_hh.shape[0], h)?;
        if *cell.get_or_insert(this) != this {
            return Err(ModelError::Layout(format!(
                "layer {k} is a {} but layer 0 is a {}; stacked layers must share one cell",
                this.name(),
                cell.map(|c| c.name()).unwrap_or_default()
            )));
        }
        let g = this.gates();
        let expected_in = if k == 0 {
            w_ih.shape[1]
        } else {
            layers_units(&layers)?
        };
        expect_shape(&names[0], w_ih, &[g * h, expected_in])?;
        expect_shape(&names[1], w_hh, &[g * h, h])?;
        expect_shape(&names[2], bias_ih, &[g * h])?;
        let mut bias = bias_ih.clone();
        let bias_hh = file.tensors.get(&names[3]);
        if let Some(b) = bias_hh {
            expect_shape(&names[3], b, &[g * h])?;
        }
        let bias_hh = match (this, bias_hh) {
            (Cell::Lstm, Some(extra)) => {
                // One bias per layer, as Keras has: fold the second one in.
                for (b, e) in bias.data.iter_mut().zip(&extra.data) {
                    *b += *e;
                }
                None
            }
            (Cell::Lstm, None) => None,
            (Cell::Gru, Some(b)) => Some(b.clone()),
            (Cell::Gru, None) => {
                return Err(ModelError::MissingTensor {
                    name: names[3].clone(),
                    hint: "a GRU keeps its recurrent bias (it sits inside r ⊙ (W_hn h + b_hn)), so the file must hold it".into(),
                })
            }
        };
        used.extend(names);
        layers.push(LayerWeights {
            w_ih: w_ih.clone(),
            w_hh: w_hh.clone(),
            bias,
            bias_hh,
        });
    }
    let (head_w, head_b) = torch_head(file, &used, hint)?;
    require_2d("head.weight", &head_w)?;
    finish(
        cell.unwrap_or(Cell::Lstm),
        layers,
        head_w,
        head_b,
        head,
        batch_size,
    )
}

/// The linear head of PyTorch-layout weights: `head.weight`/`head.bias`,
/// or the one 2-D weight and one 1-D bias the recurrent layers did not use.
fn torch_head(
    file: &TensorFile,
    used: &[String],
    hint: &str,
) -> Result<(Tensor, Tensor), ModelError> {
    Ok(if file.tensors.contains_key("head.weight") {
        (
            get(file, "head.weight", hint)?.clone(),
            get(file, "head.bias", hint)?.clone(),
        )
    } else {
        let rest: Vec<(&String, &Tensor)> = file
            .tensors
            .iter()
            .filter(|(n, _)| !used.contains(*n))
            .collect();
        let weights: Vec<_> = rest
            .iter()
            .filter(|(n, t)| n.ends_with("weight") && t.shape.len() == 2)
            .collect();
        let biases: Vec<_> = rest
            .iter()
            .filter(|(n, t)| n.ends_with("bias") && t.shape.len() == 1)
            .collect();
        if weights.len() != 1 || biases.len() != 1 {
            return Err(ModelError::MissingTensor {
                name: "head.weight".into(),
                hint: format!(
                    "expected one linear head (`head.weight` [out, H], `head.bias` [out]), found {} other weight(s) and {} other bias(es)",
                    weights.len(),
                    biases.len()
                ),
            });
        }
        (weights[0].1.clone(), biases[0].1.clone())
    })
}

fn layers_units(layers: &[LayerWeights]) -> Result<usize, ModelError> {
    layers
        .last()
        .map(|l| l.w_hh.shape[1])
        .ok_or_else(|| ModelError::Layout("no recurrent layer found".into()))
}

/// The recurrent layers input side first: as `order` names them, else
/// found by chaining shapes back from the head.
fn keras_order<'a>(
    order: Option<&'a [String]>,
    lstms: &BTreeMap<&'a str, &KerasGroup>,
    head_inputs: usize,
) -> Result<Vec<&'a str>, ModelError> {
    Ok(match order {
        Some(names) => {
            for n in names {
                if !lstms.contains_key(n.as_str()) {
                    let known: Vec<&str> = lstms.keys().copied().collect();
                    return Err(ModelError::Layout(format!(
                        "the layer '{n}' given in --layers is not a recurrent layer in the file; its recurrent layers are: {}",
                        known.join(", ")
                    )));
                }
            }
            if names.len() != lstms.len() {
                return Err(ModelError::Layout(format!(
                    "the {} layer(s) given in --layers are not the file's {} recurrent layer(s); name each once",
                    names.len(),
                    lstms.len()
                )));
            }
            names.iter().map(|s| s.as_str()).collect()
        }
        None => chain_keras_layers(lstms, head_inputs)?,
    })
}

/// One Keras recurrent layer's weights in statectl's (PyTorch's) form.
fn keras_layer(
    name: &str,
    cell: Cell,
    h: usize,
    kernel: &Tensor,
    recurrent: &Tensor,
    bias: &Tensor,
) -> Result<LayerWeights, ModelError> {
    Ok(match cell {
        Cell::Lstm => {
            expect_shape(&format!("{name}/bias"), bias, &[4 * h])?;
            LayerWeights {
                w_ih: transpose(kernel),
                w_hh: transpose(recurrent),
                bias: (*bias).clone(),
                bias_hh: None,
            }
        }
        Cell::Gru => {
            // Keras 3 (reset_after=True) keeps the input and recurrent
            // biases as the rows of one [2, 3H] tensor.
            if bias.shape != [2, 3 * h] {
                return Err(ModelError::Shape {
                        name: format!("{name}/bias"),
                        found: bias.shape_text(),
                        expected: format!("[2, {}]: the input bias and the recurrent bias row of a GRU with reset_after=True (Keras's default); GRUs with reset_after=False are not supported", 3 * h),
                    });
            }
            // Keras's gate blocks z, r, h are torch's rows r, z, n.
            let torch_rows = |t: &Tensor| keras_gru_blocks(&transpose(t), h);
            let (b_in, b_rec) = bias.data.split_at(3 * h);
            LayerWeights {
                w_ih: torch_rows(kernel),
                w_hh: torch_rows(recurrent),
                bias: keras_gru_blocks(&Tensor::new(vec![3 * h, 1], b_in.to_vec()), h)
                    .reshaped(vec![3 * h]),
                bias_hh: Some(
                    keras_gru_blocks(&Tensor::new(vec![3 * h, 1], b_rec.to_vec()), h)
                        .reshaped(vec![3 * h]),
                ),
            }
        }
    })
}

/// One Keras layer's tensors, by the part of the name after the last `/`.
type KerasGroup<'a> = BTreeMap<&'a str, &'a Tensor>;

/// Reads Keras-layout weights. Layer order is found by chaining shapes back
/// from the Dense head; `order` (LSTM layer names) forces it when the
/// shapes leave it ambiguous.
pub fn import_keras(
    file: &TensorFile,
    order: Option<&[String]>,
    head: Head,
    batch_size: usize,
) -> Result<Weights, ModelError> {
    let hint = "keras layout wants `<layer>/kernel`, `<layer>/recurrent_kernel`, `<layer>/bias` per LSTM or GRU layer and a Dense `<layer>/kernel`, `<layer>/bias`; for torch names use --layout torch";
    let mut groups: BTreeMap<&str, KerasGroup> = BTreeMap::new();
    for (name, tensor) in &file.tensors {
        let (layer, part) = name
            .rsplit_once('/')
            .ok_or_else(|| ModelError::MissingTensor {
                name: format!("<layer>/kernel (found '{name}')"),
                hint: hint.into(),
            })?;
        groups.entry(layer).or_default().insert(part, tensor);
    }
    let lstms: BTreeMap<&str, &KerasGroup> = groups
        .iter()
        .filter(|(_, g)| g.contains_key("recurrent_kernel"))
        .map(|(n, g)| (*n, g))
        .collect();
    let denses: Vec<(&str, &KerasGroup)> = groups
        .iter()
        .filter(|(_, g)| !g.contains_key("recurrent_kernel") && g.contains_key("kernel"))
        .map(|(n, g)| (*n, g))
        .collect();
    if lstms.is_empty() {
        return Err(ModelError::MissingTensor {
            name: "<layer>/recurrent_kernel".into(),
            hint: hint.into(),
        });
    }
    if denses.len() != 1 {
        return Err(ModelError::Layout(format!(
            "expected one Dense head (`<layer>/kernel` without `recurrent_kernel`), found {}",
            denses.len()
        )));
    }
    let (dense_name, dense) = denses[0];
    let kernel_name = format!("{dense_name}/kernel");
    let dense_kernel = get_part(dense, dense_name, "kernel", hint)?;
    require_2d(&kernel_name, dense_kernel)?;
    let dense_bias = get_part(dense, dense_name, "bias", hint)?;
    let head_w = transpose(dense_kernel);
    expect_shape(
        &format!("{dense_name}/bias"),
        dense_bias,
        &[head_w.shape[0]],
    )?;

    for (name, group) in &lstms {
        require_2d(
            &format!("{name}/kernel"),
            get_part(group, name, "kernel", hint)?,
        )?;
        require_2d(
            &format!("{name}/recurrent_kernel"),
            get_part(group, name, "recurrent_kernel", hint)?,
        )?;
    }
    let ordered = keras_order(order, &lstms, head_w.shape[1])?;
    let mut layers = Vec::new();
    let mut cell = None;
    for name in ordered {
        let group = lstms[name];
        let kernel = get_part(group, name, "kernel", hint)?;
        let recurrent = get_part(group, name, "recurrent_kernel", hint)?;
        let bias = get_part(group, name, "bias", hint)?;
        let h = recurrent.shape[0];
        let this = cell_of(
            &format!("{name}/recurrent_kernel"),
            &recurrent.shape,
            recurrent.shape[1],
            h,
        )?;
        if *cell.get_or_insert(this) != this {
            return Err(ModelError::Layout(format!(
                "layer '{name}' is a {} but the first layer is a {}; stacked layers must share one cell",
                this.name(),
                cell.map(|c| c.name()).unwrap_or_default()
            )));
        }
        let g = this.gates();
        expect_shape(&format!("{name}/recurrent_kernel"), recurrent, &[h, g * h])?;
        if let Some(prev) = layers.last().map(|l: &LayerWeights| l.w_hh.shape[1]) {
            expect_shape(&format!("{name}/kernel"), kernel, &[prev, g * h])?;
        } else {
            expect_shape(&format!("{name}/kernel"), kernel, &[kernel.shape[0], g * h])?;
        }
        let layer = keras_layer(name, this, h, kernel, recurrent, bias)?;
        layers.push(layer);
    }
    finish(
        cell.unwrap_or(Cell::Lstm),
        layers,
        head_w,
        dense_bias.clone(),
        head,
        batch_size,
    )
}

/// Reorders the row blocks of a `[3H, n]` tensor from Keras's GRU gate
/// order (z, r, h) to PyTorch's (r, z, n).
fn keras_gru_blocks(t: &Tensor, h: usize) -> Tensor {
    let width = t.shape[1];
    let block = |i: usize| &t.data[i * h * width..(i + 1) * h * width];
    let data = [block(1), block(0), block(2)].concat();
    Tensor::new(t.shape.clone(), data)
}

fn get_part<'a>(
    group: &KerasGroup<'a>,
    layer: &str,
    part: &str,
    hint: &str,
) -> Result<&'a Tensor, ModelError> {
    group
        .get(part)
        .copied()
        .ok_or_else(|| ModelError::MissingTensor {
            name: format!("{layer}/{part}"),
            hint: hint.to_string(),
        })
}

/// Orders LSTM layers by walking back from the head: the last layer's
/// width is the head's input, each earlier layer's width the next one's
/// input.
fn chain_keras_layers<'a>(
    lstms: &BTreeMap<&'a str, &KerasGroup>,
    head_input: usize,
) -> Result<Vec<&'a str>, ModelError> {
    let mut remaining: Vec<&str> = lstms.keys().copied().collect();
    let mut reversed = Vec::new();
    let mut want = head_input;
    while !remaining.is_empty() {
        let fits: Vec<&str> = remaining
            .iter()
            .copied()
            .filter(|n| lstms[n].get("recurrent_kernel").map(|t| t.shape[0]) == Some(want))
            .collect();
        match fits.as_slice() {
            [one] => {
                reversed.push(*one);
                remaining.retain(|n| n != one);
                want = lstms[one].get("kernel").map(|t| t.shape[0]).unwrap_or(0);
            }
            [] => {
                return Err(ModelError::Layout(format!(
                    "cannot chain the LSTM layers ({}) by shape: no layer of width {want} feeds the next; check the file or name the order with --layers",
                    remaining.join(", ")
                )))
            }
            many => {
                return Err(ModelError::Layout(format!(
                    "layer order is ambiguous: {} all have width {want}; name the order with --layers a,b",
                    many.join(", ")
                )))
            }
        }
    }
    reversed.reverse();
    Ok(reversed)
}

impl Weights {
    /// Reads a weights file statectl wrote (config in its metadata).
    pub fn from_file(file: &TensorFile) -> Result<Weights, ModelError> {
        let config: ModelConfig = file
            .metadata
            .get(CONFIG_METADATA_KEY)
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| {
                ModelError::Layout(format!(
                    "weights file has no '{CONFIG_METADATA_KEY}' metadata; bring outside weights in with `statectl model import FILE --layout torch|keras`"
                ))
            })?;
        let mut weights = import_torch(file, config.head, config.batch_size)?;
        weights.config.outputs = config.outputs;
        Ok(weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], seed: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::new(
            shape.to_vec(),
            (0..n).map(|i| seed + i as f32 * 0.01).collect(),
        )
    }

    #[test]
    fn keras_stacked_layers_chain_by_shape_and_match_torch() {
        let mut keras = TensorFile::default();
        keras.insert("b/kernel", t(&[3, 8], 0.1));
        keras.insert("b/recurrent_kernel", t(&[2, 8], 0.2));
        keras.insert("b/bias", t(&[8], 0.3));
        keras.insert("a/kernel", t(&[1, 12], 0.4));
        keras.insert("a/recurrent_kernel", t(&[3, 12], 0.5));
        keras.insert("a/bias", t(&[12], 0.6));
        keras.insert("dense/kernel", t(&[2, 5], 0.7));
        keras.insert("dense/bias", t(&[5], 0.8));
        let w = import_keras(&keras, None, Head::Softmax, 4).unwrap();
        assert_eq!(w.config.units, vec![3, 2]);
        assert_eq!(w.config.input_size, 1);
        assert_eq!(w.config.output_size, 5);
        assert_eq!(w.layers[0].w_ih, transpose(&keras.tensors["a/kernel"]));

        let torch = w.to_file();
        let back = import_torch(&torch, Head::Softmax, 4).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn ambiguous_keras_order_asks_for_layers() {
        let mut keras = TensorFile::default();
        for name in ["x", "y"] {
            keras.insert(&format!("{name}/kernel"), t(&[2, 8], 0.1));
            keras.insert(&format!("{name}/recurrent_kernel"), t(&[2, 8], 0.2));
            keras.insert(&format!("{name}/bias"), t(&[8], 0.3));
        }
        keras.insert("dense/kernel", t(&[2, 5], 0.7));
        keras.insert("dense/bias", t(&[5], 0.8));
        let err = import_keras(&keras, None, Head::Softmax, 1).unwrap_err();
        assert!(err.to_string().contains("--layers"), "{err}");
        let order = vec!["y".to_string(), "x".to_string()];
        assert!(import_keras(&keras, Some(&order), Head::Softmax, 1).is_ok());
    }
}
