//! `Store.forward`: one forward pass that records nothing, for acting loops
//! that must not grow the journal. The model's packed network is kept per
//! weights id, so a loop pays for loading and re-hashing the weights once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use statectl::id::WeightsId;
use statectl::model::fused::FusedNet;
use statectl::model::network::predict_fused;
use statectl::model::Head;
use statectl::ops::models;
use statectl::ops::models::LayoutMismatch;

use crate::{
    bytearray_of, state_of, state_tensors, tensor_file, tensor_of, Arrays, OutTensor, Store,
};

/// Packed networks by weights id (weights are content-addressed, so an
/// entry can never be stale).
#[derive(Default)]
pub struct Nets(Mutex<HashMap<WeightsId, Arc<FusedNet>>>);

impl Nets {
    fn get(
        &self,
        id: WeightsId,
        load: impl FnOnce() -> anyhow::Result<FusedNet>,
    ) -> anyhow::Result<Arc<FusedNet>> {
        let mut nets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(net) = nets.get(&id) {
            return Ok(net.clone());
        }
        let net = Arc::new(load()?);
        nets.insert(id, net.clone());
        Ok(net)
    }
}

/// The outputs' shape and bytes, the logits' bytes (softmax heads), and the
/// new state's tensors.
type Forwarded = (
    Vec<usize>,
    Py<PyByteArray>,
    Option<Py<PyByteArray>>,
    Vec<OutTensor>,
);

#[pymethods]
impl Store {
    /// Runs `x` from the state in `tensors` and returns what it gives,
    /// recording nothing.
    #[pyo3(signature = (x, tensors, model=None))]
    fn forward(
        &self,
        py: Python<'_>,
        x: PyBuffer<f32>,
        tensors: Arrays,
        model: Option<String>,
    ) -> PyResult<Forwarded> {
        let x = tensor_of(py, "x", &x)?;
        let file = tensor_file(py, &tensors)?;
        let (prediction, head) = self.with(py, |store| {
            let model = models::find(store, model.as_deref())?;
            statectl::input::check_input(&x, "x", model.config.input_size)?;
            if x.shape[1] == 0 {
                anyhow::bail!("x has no time steps; give [batch, steps >= 1, features]");
            }
            let state = state_of(&file)?;
            model.check_layout(&state, "in the arrays")?;
            if state.batch() != x.shape[0] {
                return Err(LayoutMismatch(format!(
                    "x has batch {} but the state has {} slot(s); pass a state of {} slot(s)",
                    x.shape[0],
                    state.batch(),
                    x.shape[0]
                ))
                .into());
            }
            let net = self.nets.get(model.record.weights, || {
                Ok(FusedNet::new(&models::weights(store, &model)?))
            })?;
            Ok((predict_fused(&net, &x, &state), model.config.head))
        })?;
        let logits = match head {
            Head::Softmax => Some(bytearray_of(py, &[&prediction.logits])?),
            Head::Linear => None,
        };
        Ok((
            prediction.shape.clone(),
            bytearray_of(py, &[&prediction.outputs])?,
            logits,
            state_tensors(py, &prediction.state)?,
        ))
    }
}
