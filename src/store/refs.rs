//! Refs: tags (a global name for a state) and streams (each model's
//! current state per stream name).

use rusqlite::{params, OptionalExtension};

use super::{now_ms, Result, Store};
use crate::id::StateId;

#[derive(Debug, Clone)]
pub struct TagRecord {
    pub name: String,
    pub state: StateId,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub model: i64,
    pub name: String,
    pub state: StateId,
    pub updated_at: i64,
}

fn state_col(bytes: Vec<u8>) -> rusqlite::Result<StateId> {
    StateId::from_slice(&bytes).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "state id is not 32 bytes".into(),
        )
    })
}

impl Store {
    pub fn tag(&self, name: &str) -> Result<Option<TagRecord>> {
        Ok(self
            .conn
            .prepare_cached("SELECT state, updated_at FROM tags WHERE name = ?1")?
            .query_row([name], |r| {
                Ok(TagRecord {
                    name: name.to_string(),
                    state: state_col(r.get(0)?)?,
                    updated_at: r.get(1)?,
                })
            })
            .optional()?)
    }

    pub fn set_tag(&self, name: &str, state: &StateId) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tags (name, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![name, &state.bytes()[..], now_ms()],
        )?;
        Ok(())
    }

    /// Removes a tag; false when there was none.
    pub fn delete_tag(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM tags WHERE name = ?1", [name])?
            > 0)
    }

    pub fn tags_of(&self, state: &StateId) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM tags WHERE state = ?1 ORDER BY name")?;
        let rows = stmt.query_map([&state.bytes()[..]], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn list_tags(&self) -> Result<Vec<TagRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, state, updated_at FROM tags ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(TagRecord {
                name: r.get(0)?,
                state: state_col(r.get(1)?)?,
                updated_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to `limit` tag names starting with `text`'s first character:
    /// where "did you mean" looks (a typo rarely hits the first letter, and
    /// the range is one index scan however many tags there are).
    pub fn tag_names_like(&self, text: &str, limit: usize) -> Result<Vec<String>> {
        let Some(first) = text.chars().next() else {
            return Ok(Vec::new());
        };
        let from = first.to_string();
        let until =
            char::from_u32(first as u32 + 1).map_or_else(|| "\u{10FFFF}".to_string(), String::from);
        let mut stmt = self.conn.prepare(
            "SELECT name FROM tags WHERE name >= ?1 AND name < ?2 ORDER BY name LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, until, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn stream(&self, model: i64, name: &str) -> Result<Option<StreamRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state, updated_at FROM streams WHERE model = ?1 AND name = ?2",
                params![model, name],
                |r| {
                    Ok(StreamRecord {
                        model,
                        name: name.to_string(),
                        state: state_col(r.get(0)?)?,
                        updated_at: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn set_stream(&self, model: i64, name: &str, state: &StateId) -> Result<()> {
        self.conn.execute(
            "INSERT INTO streams (model, name, state, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (model, name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![model, name, &state.bytes()[..], now_ms()],
        )?;
        Ok(())
    }

    pub fn streams_of(&self, model: i64) -> Result<Vec<StreamRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, state, updated_at FROM streams WHERE model = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([model], |r| {
            Ok(StreamRecord {
                model,
                name: r.get(0)?,
                state: state_col(r.get(1)?)?,
                updated_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
