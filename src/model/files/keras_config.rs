//! A `.keras` file's `config.json`: the architecture Keras saved, read
//! into what statectl runs (LSTM/GRU layers, then one Dense head), or
//! refused naming the layer that cannot be represented.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use crate::model::{Head, Outputs};
use crate::state::Cell;

/// What a `.keras` file says about its model.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasArchitecture {
    /// The recurrent layers' names, input side first.
    pub recurrent: Vec<String>,
    pub cell: Cell,
    pub head: Head,
    /// The Dense layer's name.
    pub head_layer: String,
    pub outputs: Outputs,
    /// The fixed batch size of a stateful model (`None` when the model is
    /// not stateful or its batch is not fixed).
    pub batch_size: Option<usize>,
}

/// Layers that compute nothing at inference.
const PASS_THROUGH: &[&str] = &[
    "InputLayer",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
];

fn why_not(class: &str) -> &'static str {
    match class {
        "Bidirectional" => "it also runs its layer backwards over the sequence, and statectl carries state forwards only",
        "SimpleRNN" => "statectl runs LSTM and GRU cells",
        "ConvLSTM1D" | "ConvLSTM2D" | "ConvLSTM3D" | "Conv1D" | "Conv2D" => {
            "statectl runs dense LSTM and GRU cells, not convolutions"
        }
        "Masking" => "statectl runs every step of every sequence (no masks)",
        "Embedding" => "statectl reads float inputs [batch, steps, features]; feed it the embedded vectors",
        "TimeDistributed" => "statectl's head is one Dense layer (a per-step head is return_sequences=True before it)",
        "Attention" | "MultiHeadAttention" | "AdditiveAttention" => {
            "statectl runs recurrent layers and one Dense head, without attention"
        }
        _ => "statectl runs LSTM/GRU layers followed by one Dense head",
    }
}

fn field<'v>(layer: &'v Value, key: &str) -> Option<&'v Value> {
    layer.get("config").and_then(|c| c.get(key))
}

fn text<'v>(layer: &'v Value, key: &str) -> &'v str {
    field(layer, key).and_then(Value::as_str).unwrap_or("")
}

fn flag(layer: &Value, key: &str) -> bool {
    field(layer, key).and_then(Value::as_bool).unwrap_or(false)
}

fn describe(name: &str, class: &str) -> String {
    format!("layer '{name}' ({class})")
}

/// Refuses a recurrent layer whose options statectl's cells do not compute.
fn check_recurrent(layer: &Value, name: &str, class: &str) -> Result<()> {
    let expect = [("activation", "tanh"), ("recurrent_activation", "sigmoid")];
    for (key, want) in expect {
        let got = text(layer, key);
        if !got.is_empty() && got != want {
            bail!(
                "{} has {key}='{got}'; statectl's cells use {key}='{want}' (Keras's default)",
                describe(name, class)
            );
        }
    }
    for key in ["go_backwards", "return_state"] {
        if flag(layer, key) {
            bail!(
                "{} has {key}=True; statectl runs layers forwards and passes on their outputs only",
                describe(name, class)
            );
        }
    }
    if field(layer, "use_bias").and_then(Value::as_bool) == Some(false) {
        bail!(
            "{} has use_bias=False; statectl's cells have biases (save it with use_bias=True, or set the biases to zero)",
            describe(name, class)
        );
    }
    if class == "GRU" && field(layer, "reset_after").and_then(Value::as_bool) == Some(false) {
        bail!(
            "{} has reset_after=False; statectl runs Keras 3's default GRU (reset_after=True, PyTorch's formula)",
            describe(name, class)
        );
    }
    Ok(())
}

/// The batch size a layer's shapes fix (`batch_shape` of an input,
/// `build_config.input_shape` of a layer), when they fix one.
fn fixed_batch(layer: &Value) -> Option<usize> {
    field(layer, "batch_shape")
        .or_else(|| field(layer, "batch_input_shape"))
        .or_else(|| layer.get("build_config").and_then(|b| b.get("input_shape")))
        .and_then(|shape| shape.get(0))
        .and_then(Value::as_u64)
        .map(|b| b as usize)
}

/// A functional model must be one chain: each layer fed by the one before.
fn check_chain(layers: &[Value]) -> Result<()> {
    let mut previous: Option<&str> = None;
    for layer in layers {
        let name = layer
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_else(|| text(layer, "name"));
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let inbound = layer.get("inbound_nodes").and_then(Value::as_array);
        let sources: Vec<&str> = inbound
            .map(|nodes| {
                nodes
                    .iter()
                    .flat_map(|n| {
                        n.get("args")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    })
                    .filter_map(|a| a.pointer("/config/keras_history/0").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let chained = match previous {
            None => sources.is_empty(),
            Some(p) => inbound.map(Vec::len) == Some(1) && sources == [p],
        };
        if !chained {
            bail!(
                "{} is not fed by the layer before it alone (its inputs: {}); statectl runs one chain of layers from one input",
                describe(name, class),
                if sources.is_empty() { "none".into() } else { sources.join(", ") }
            );
        }
        previous = Some(name);
    }
    Ok(())
}

/// The Dense head's name and activation.
fn dense_head(layer: &Value, name: &str, first: bool) -> Result<(String, Head)> {
    let class = "Dense";
    if first {
        bail!(
            "{} comes before any LSTM or GRU layer; statectl runs LSTM/GRU layers followed by one Dense head",
            describe(name, class)
        );
    }
    if field(layer, "use_bias").and_then(Value::as_bool) == Some(false) {
        bail!(
            "{} has use_bias=False; statectl's head has a bias",
            describe(name, class)
        );
    }
    let activation = match text(layer, "activation") {
        "softmax" => Head::Softmax,
        "linear" | "" => Head::Linear,
        other => bail!(
            "the Dense head {} has activation '{other}'; statectl runs softmax or linear heads",
            describe(name, class)
        ),
    };
    Ok((name.to_string(), activation))
}

/// Reads the architecture from `config.json`'s text.
pub fn read(config: &[u8]) -> Result<KerasArchitecture> {
    let root: Value = serde_json::from_slice(config).map_err(|e| {
        anyhow!("its config.json is not valid JSON ({e}); save the model again with model.save")
    })?;
    let class = root.get("class_name").and_then(Value::as_str).unwrap_or("");
    if !matches!(class, "Sequential" | "Functional" | "Model") {
        bail!(
            "its config.json describes a '{class}', not a Sequential or functional model; statectl imports those"
        );
    }
    let layers = root
        .pointer("/config/layers")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            anyhow!("its config.json lists no layers; save the model again with model.save")
        })?;
    if class != "Sequential" {
        check_chain(layers)?;
    }
    let mut recurrent = Vec::new();
    let mut cell = None;
    let mut head: Option<(String, Head)> = None;
    let mut sequences = false;
    let mut stateful = false;
    let mut batch = None;
    for layer in layers {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let name = text(layer, "name").to_string();
        batch = batch.or_else(|| fixed_batch(layer));
        if PASS_THROUGH.contains(&class) {
            continue;
        }
        if let Some((dense, _)) = &head {
            bail!(
                "{} comes after the Dense head '{dense}'; statectl runs LSTM/GRU layers followed by one Dense head",
                describe(&name, class)
            );
        }
        match class {
            "LSTM" | "GRU" => {
                check_recurrent(layer, &name, class)?;
                let this = if class == "LSTM" {
                    Cell::Lstm
                } else {
                    Cell::Gru
                };
                if *cell.get_or_insert(this) != this {
                    bail!(
                        "{} follows a {} layer; statectl stacks layers of one cell",
                        describe(&name, class),
                        cell.map(|c| c.name()).unwrap_or_default()
                    );
                }
                if !recurrent.is_empty() && !sequences {
                    bail!(
                        "{} follows a layer with return_sequences=False; inner recurrent layers must return sequences",
                        describe(&name, class)
                    );
                }
                sequences = flag(layer, "return_sequences");
                stateful |= flag(layer, "stateful");
                recurrent.push(name);
            }
            "Dense" => head = Some(dense_head(layer, &name, recurrent.is_empty())?),
            other => bail!(
                "{} cannot be represented: {}",
                describe(&name, other),
                why_not(other)
            ),
        }
    }
    let (head_layer, head) = head.ok_or_else(|| {
        anyhow!(
            "the model has no Dense head; statectl runs LSTM/GRU layers followed by one Dense head"
        )
    })?;
    Ok(KerasArchitecture {
        recurrent,
        cell: cell.unwrap_or(Cell::Lstm),
        head,
        head_layer,
        outputs: if sequences {
            Outputs::Sequence
        } else {
            Outputs::Last
        },
        batch_size: if stateful { batch } else { None },
    })
}
