//! Models: lookup by name, their weights (re-hashed on every load), and
//! registering new weights with their `main` stream in one transaction.

use anyhow::{bail, Result};

pub use super::model_handle::{LayoutMismatch, Model};
use super::streams;
use crate::id::WeightsId;
use crate::model::Weights;
use crate::store::{Store, StoreError};
use crate::tensors::TensorFile;

/// The named model, or the newest one.
pub fn find(store: &Store, name: Option<&str>) -> Result<Model> {
    let record = match name {
        Some(n) => store.model_by_name(n)?,
        None => store.newest_model()?,
    };
    Model::from_record(record)
}

/// The named model; with no name the newest one, or none when the store
/// has no model (for operations that work without one).
pub fn find_optional(store: &Store, name: Option<&str>) -> Result<Option<Model>> {
    match name {
        Some(_) => find(store, name).map(Some),
        None if store.list_models()?.is_empty() => Ok(None),
        None => find(store, None).map(Some),
    }
}

/// The model's weights, the file re-hashed.
pub fn weights(store: &Store, model: &Model) -> Result<Weights> {
    let bytes = store.load_weights(&model.record.weights)?;
    let file = TensorFile::decode(&bytes)?;
    Ok(Weights::from_file(&file)?)
}

/// Refuses a name that would not read well as a model name.
pub fn check_model_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 200
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("'{name}' cannot be a model name: use letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

/// What to register.
pub struct Registration<'a> {
    pub name: &'a str,
    pub weights: &'a Weights,
    /// The training record (JSON text), for trained models.
    pub training: Option<&'a str>,
    /// Replace a model of that name (its events stay in the journal).
    pub replace: bool,
}

/// Inside the caller's write: stores the weights file and the model row and
/// starts the `main` stream at zeros. If anything later in the same
/// transaction fails, call [`forget_created`] with the returned flag before
/// the rollback (the write lock is still held then).
pub fn register_in(store: &Store, reg: &Registration) -> Result<(Model, Option<WeightsId>)> {
    check_model_name(reg.name)?;
    let bytes = reg.weights.to_file().encode();
    let config = serde_json::to_string(&reg.weights.config)?;
    let training = reg.training;
    let (weights_id, new_file) = store.put_weights(&bytes)?;
    let created = new_file.then_some(weights_id);
    let result = (|| -> Result<Model> {
        if let Some(old) = store.find_model(reg.name)? {
            if !reg.replace {
                return Err(StoreError::Conflict(format!(
                    "model '{}' already exists; choose another name, or replace it (model import --force; Python: force=True)",
                    reg.name
                ))
                .into());
            }
            store.delete_model(old.id)?;
        }
        let record = store.insert_model(reg.name, &weights_id, &config, training)?;
        let model = Model {
            record,
            config: reg.weights.config.clone(),
        };
        streams::reset_to_zeros(store, &model, "main", reg.weights.config.batch_size, None)?;
        Ok(model)
    })();
    match result {
        Ok(model) => Ok((model, created)),
        Err(e) => {
            forget_created(store, created);
            Err(e)
        }
    }
}

/// Removes a weights file this transaction created, before it rolls back.
pub fn forget_created(store: &Store, created: Option<WeightsId>) {
    if let Some(id) = created {
        store.remove_created_weights(&id);
    }
}

/// Registers a model on its own (`model import`): one transaction.
pub fn register(store: &Store, reg: &Registration) -> Result<Model> {
    store.write(|store| register_in(store, reg).map(|(model, _)| model))
}
