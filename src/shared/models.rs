//! A model read straight from the shared store, for a learner's burn-in,
//! a prediction or an audit: its row by name (or the newest), its weights
//! file and the objects its events name, re-hashed against their ids, as
//! the embedded store reads them.

use anyhow::{anyhow, bail, Result};

use super::SharedStore;
use super::Table;
use crate::id::{Digest, ObjectId, WeightsId};
use crate::store::ModelRecord;

impl SharedStore {
    /// The model called `name`, or with no name the newest one.
    pub fn model_record(&mut self, name: Option<&str>) -> Result<ModelRecord> {
        let models = self.models()?;
        let found = match name {
            Some(name) => models.iter().find(|m| m.name == name),
            None => models.iter().max_by_key(|m| (m.created_at, m.name.clone())),
        };
        let Some(model) = found else {
            return Err(match name {
                Some(name) => {
                    let names = models.iter().map(|m| m.name.as_str());
                    let meant = crate::suggest::near_miss(name, names)
                        .map(|m| format!("did you mean '{m}'? "))
                        .unwrap_or_default();
                    anyhow!("no model '{name}' on {}; {meant}push it there from the store that has it: statectl push {0}", self.shown)
                }
                None => anyhow!(
                    "{} has no model yet; push one there from the store that has it: statectl push {0}",
                    self.shown
                ),
            });
        };
        Ok(ModelRecord {
            // Models on a shared store have no row number; events there
            // name a model by name and weights.
            id: 0,
            name: model.name.clone(),
            weights: WeightsId::from_slice(&model.weights).ok_or_else(|| {
                anyhow!(
                    "model {} on {} has a weights id that is not 32 bytes: the shared store is damaged",
                    model.name,
                    self.shown
                )
            })?,
            config: model.config.clone(),
            training: model.training.clone(),
            created_at: model.created_at,
        })
    }

    /// A weights file's bytes, re-hashed against its id.
    pub fn weights_file(&mut self, id: &WeightsId) -> Result<Vec<u8>> {
        self.hashed_bytes(Table::WeightsFiles, id.bytes(), "weights file")
    }

    /// An object's bytes (a prediction's input or output, training data),
    /// re-hashed against its id.
    pub fn object(&mut self, id: &ObjectId) -> Result<Vec<u8>> {
        self.hashed_bytes(Table::Objects, id.bytes(), "object")
    }

    fn hashed_bytes(&mut self, table: Table, id: &[u8; 32], what: &str) -> Result<Vec<u8>> {
        let rows = self.rows(table, &[*id])?;
        let Some(row) = rows.first() else {
            bail!(
                "{what} {} is not on {}: the shared store is damaged (statectl --store {1} verify names what is missing)",
                hex::encode(id),
                self.shown
            );
        };
        let bytes: Vec<u8> = row.get(1);
        if Digest::of(&[&bytes]).0 != *id {
            bail!(
                "{what} {} on {} does not hash to its id: the shared store is damaged",
                hex::encode(id),
                self.shown
            );
        }
        Ok(bytes)
    }
}
