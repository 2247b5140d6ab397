//! A model written as a Keras 3 `.keras` file: `config.json` (a
//! `Sequential` of stateful LSTM/GRU layers at the model's batch size and
//! its Dense head), `metadata.json`, and `model.weights.h5` under Keras's
//! variable paths, the zip members stored as Keras stores them.

use std::io::{Cursor, Write};

use anyhow::{anyhow, Result};
use hdf5_pure::{AttrValue, FileBuilder, GroupBuilder};
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

use crate::model::{Head, Outputs, Weights};
use crate::state::Cell;
use crate::tensors::Tensor;

/// The Keras version whose file layout this writes.
const KERAS_VERSION: &str = "3.15.1";

/// Keras's own name for the k-th layer of a class: `lstm`, `lstm_1`, ...
fn layer_name(class: &str, k: usize) -> String {
    if k == 0 {
        class.to_string()
    } else {
        format!("{class}_{k}")
    }
}

fn layer(class: &str, config: Value) -> Value {
    json!({ "module": "keras.layers", "class_name": class, "config": config, "registered_name": null })
}

fn config_json(weights: &Weights) -> Value {
    let c = &weights.config;
    let class = match c.cell {
        Cell::Lstm => "LSTM",
        Cell::Gru => "GRU",
    };
    let mut layers = vec![layer(
        "InputLayer",
        json!({ "batch_shape": [c.batch_size, null, c.input_size], "dtype": "float32", "name": "input_layer" }),
    )];
    let last = c.units.len() - 1;
    for (k, &units) in c.units.iter().enumerate() {
        let mut config = json!({
            "name": layer_name(&class.to_lowercase(), k),
            "units": units,
            "stateful": true,
            "return_sequences": k < last || c.outputs == Outputs::Sequence,
            "activation": "tanh",
            "recurrent_activation": "sigmoid",
            "use_bias": true,
        });
        if c.cell == Cell::Gru {
            config["reset_after"] = json!(true);
        }
        layers.push(layer(class, config));
    }
    let activation = match c.head {
        Head::Softmax => "softmax",
        Head::Linear => "linear",
    };
    layers.push(layer(
        "Dense",
        json!({ "name": "dense", "units": c.output_size, "activation": activation, "use_bias": true }),
    ));
    // The build shape makes Keras create the stateful layers' state
    // variables at the model's batch size when it loads the file.
    let input_shape = json!([c.batch_size, null, c.input_size]);
    json!({
        "module": "keras",
        "class_name": "Sequential",
        "config": { "name": "sequential", "layers": layers, "build_input_shape": input_shape },
        "registered_name": null,
        "build_config": { "input_shape": input_shape },
    })
}

/// A layer's `vars` group: the user's layer name as its `name`
/// attribute, the variables as datasets `0, 1, ...`.
fn fill_vars(vars: &mut GroupBuilder, name: &str, tensors: &[&Tensor]) {
    vars.set_attr("name", AttrValue::String(name.to_string()));
    for (i, t) in tensors.iter().enumerate() {
        let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        vars.create_dataset(&i.to_string())
            .with_f32_data(&t.data)
            .with_shape(&shape);
    }
}

fn add_vars(parent: &mut GroupBuilder, name: &str, tensors: &[&Tensor]) {
    let mut vars = parent.create_group("vars");
    fill_vars(&mut vars, name, tensors);
    parent.add_group(vars.finish());
}

fn weights_h5(weights: &Weights) -> Result<Vec<u8>> {
    let keras = weights.to_keras_file();
    let part = |name: &str| -> Result<&Tensor> {
        keras
            .tensors
            .get(name)
            .ok_or_else(|| anyhow!("the Keras form of the weights lacks '{name}'"))
    };
    let class = weights.config.cell.name();
    let mut file = FileBuilder::new();
    let mut layers = file.create_group("layers");
    for k in 0..weights.config.units.len() {
        let name = layer_name(class, k);
        let mut group = layers.create_group(&name);
        let mut cell = group.create_group("cell");
        let tensors = [
            part(&format!("{name}/kernel"))?,
            part(&format!("{name}/recurrent_kernel"))?,
            part(&format!("{name}/bias"))?,
        ];
        add_vars(&mut cell, &format!("{class}_cell"), &tensors);
        group.add_group(cell.finish());
        add_vars(&mut group, &name, &[]);
        layers.add_group(group.finish());
    }
    let mut dense = layers.create_group("dense");
    add_vars(
        &mut dense,
        "dense",
        &[part("dense/kernel")?, part("dense/bias")?],
    );
    layers.add_group(dense.finish());
    file.add_group(layers.finish());
    let mut root_vars = file.create_group("vars");
    fill_vars(&mut root_vars, "sequential", &[]);
    file.add_group(root_vars.finish());
    file.finish()
        .map_err(|e| anyhow!("cannot write the HDF5 weights ({e})"))
}

/// The `.keras` file's bytes.
pub fn write(weights: &Weights) -> Result<Vec<u8>> {
    let metadata = json!({ "keras_version": KERAS_VERSION, "date_saved": "statectl" });
    let members: [(&str, Vec<u8>); 3] = [
        ("metadata.json", serde_json::to_vec(&metadata)?),
        ("config.json", serde_json::to_vec(&config_json(weights))?),
        ("model.weights.h5", weights_h5(weights)?),
    ];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, bytes) in members {
        zip.start_file(name, stored)
            .and_then(|_| zip.write_all(&bytes).map_err(Into::into))
            .map_err(|e| anyhow!("cannot write the .keras zip ({e})"))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| anyhow!("cannot write the .keras zip ({e})"))?;
    Ok(cursor.into_inner())
}
