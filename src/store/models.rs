//! Model rows: a name, the weights file id, the config and training
//! parameters as JSON.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, Result, Store, StoreError};
use crate::id::WeightsId;

#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub id: i64,
    pub name: String,
    pub weights: WeightsId,
    pub config: String,
    pub training: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, weights, config, training, created_at";

fn from_row(r: &Row) -> rusqlite::Result<ModelRecord> {
    let weights: Vec<u8> = r.get(2)?;
    Ok(ModelRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        weights: WeightsId::from_slice(&weights).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Blob,
                "weights id is not 32 bytes".into(),
            )
        })?,
        config: r.get(3)?,
        training: r.get(4)?,
        created_at: r.get(5)?,
    })
}

impl Store {
    pub fn insert_model(
        &self,
        name: &str,
        weights: &WeightsId,
        config: &str,
        training: Option<&str>,
    ) -> Result<ModelRecord> {
        self.conn.execute(
            "INSERT INTO models (name, weights, config, training, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, &weights.bytes()[..], config, training, now_ms()],
        )?;
        self.model_by_name(name)
    }

    /// Removes a model and its streams (events keep what a replay needs).
    pub fn delete_model(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM models WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn rename_model(&self, id: i64, name: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE models SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        Ok(())
    }

    pub fn find_model(&self, name: &str) -> Result<Option<ModelRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM models WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?)
    }

    pub fn model_by_name(&self, name: &str) -> Result<ModelRecord> {
        if let Some(model) = self.find_model(name)? {
            return Ok(model);
        }
        let names: Vec<String> = self.list_models()?.into_iter().map(|m| m.name).collect();
        let meant = crate::suggest::near_miss(name, names.iter().map(String::as_str))
            .map(|m| format!("did you mean '{m}'? "))
            .unwrap_or_default();
        Err(StoreError::NotFound {
            kind: "model",
            name: name.to_string(),
            hint: format!("{meant}`statectl model list` shows the models in this store"),
        })
    }

    pub fn model_by_id(&self, id: i64) -> Result<ModelRecord> {
        Ok(self.conn.query_row(
            &format!("SELECT {COLUMNS} FROM models WHERE id = ?1"),
            [id],
            from_row,
        )?)
    }

    pub fn newest_model(&self) -> Result<ModelRecord> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM models ORDER BY id DESC LIMIT 1"),
                [],
                from_row,
            )
            .optional()?
            .ok_or(StoreError::NoModels)
    }

    pub fn list_models(&self) -> Result<Vec<ModelRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM models ORDER BY id"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// What a model's training record names in the store: its data object and
/// the weights it started from. Read as typed fields so gc and verify never
/// depend on the rest of the record's shape.
#[derive(Debug, Clone, Default)]
pub struct TrainingRefs {
    pub model: String,
    pub data: Option<crate::id::ObjectId>,
    pub init_weights: Option<WeightsId>,
}

#[derive(serde::Deserialize, Default)]
struct TrainingRefsJson {
    data: Option<String>,
    #[serde(default)]
    init: InitRefsJson,
}

#[derive(serde::Deserialize, Default)]
struct InitRefsJson {
    weights: Option<String>,
}

impl Store {
    /// The data objects and init weights every trained model and every
    /// unfinished training run (named `run NAME`) names.
    pub fn training_refs(&self) -> Result<Vec<TrainingRefs>> {
        use crate::id::{Digest, ObjectId};
        let mut stmt = self.conn.prepare(
            // Runs in progress name their data and init weights the same way.
            "SELECT name, training FROM models WHERE training IS NOT NULL
             UNION ALL SELECT 'run ' || name, plan FROM runs",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut refs = Vec::new();
        for row in rows {
            let (model, text) = row?;
            let json: TrainingRefsJson = serde_json::from_str(&text).map_err(|e| {
                StoreError::Conflict(format!(
                    "model '{model}' has an unreadable training record ({e}); run `statectl verify`"
                ))
            })?;
            refs.push(TrainingRefs {
                model,
                data: json
                    .data
                    .as_deref()
                    .and_then(Digest::parse_hex)
                    .map(ObjectId),
                init_weights: json
                    .init
                    .weights
                    .as_deref()
                    .and_then(Digest::parse_hex)
                    .map(WeightsId),
            });
        }
        Ok(refs)
    }
}
