//! Content rows on the shared store: which of a list of ids it lacks,
//! sending rows through PostgreSQL's binary COPY (into a temporary table,
//! then inserted with `ON CONFLICT DO NOTHING`, so a retried or duplicated
//! send is harmless), and reading rows back by id.

use anyhow::Result;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::Transaction;

use super::SharedStore;

/// The content tables, each keyed by a 32-byte id.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Slots,
    States,
    Objects,
    WeightsFiles,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Slots => "slots",
            Table::States => "states",
            Table::Objects => "objects",
            Table::WeightsFiles => "weights_files",
        }
    }

    /// What a row is, in messages.
    pub fn plural(self) -> &'static str {
        match self {
            Table::Slots => "slots",
            Table::States => "states",
            Table::Objects => "objects",
            Table::WeightsFiles => "weights files",
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Table::Slots => "id, layout, bytes",
            Table::States => "id, layout, batch, slot_ids, created_at",
            Table::Objects | Table::WeightsFiles => "id, bytes",
        }
    }

    fn types(self) -> &'static [Type] {
        match self {
            Table::Slots => &[Type::BYTEA, Type::TEXT, Type::BYTEA],
            Table::States => &[Type::BYTEA, Type::TEXT, Type::INT4, Type::BYTEA, Type::INT8],
            Table::Objects | Table::WeightsFiles => &[Type::BYTEA, Type::BYTEA],
        }
    }
}

/// How many ids one question about missing rows carries.
const IDS_PER_QUERY: usize = 8192;

/// Copies rows (written by `write`) into `table` inside `tx`; rows already
/// there are left as they are. Returns how many were new.
pub fn copy_into(
    tx: &mut Transaction,
    table: Table,
    write: impl FnOnce(&mut BinaryCopyInWriter) -> std::result::Result<(), postgres::Error>,
) -> std::result::Result<u64, postgres::Error> {
    let (name, columns) = (table.name(), table.columns());
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_{name} (LIKE {name}) ON COMMIT DELETE ROWS"
    ))?;
    let sink = tx.copy_in(&format!(
        "COPY incoming_{name} ({columns}) FROM STDIN (FORMAT binary)"
    ))?;
    let mut writer = BinaryCopyInWriter::new(sink, table.types());
    write(&mut writer)?;
    writer.finish()?;
    // Statistics for the planner (see refs.rs: a temporary table has none).
    tx.batch_execute(&format!("ANALYZE incoming_{name}"))?;
    tx.execute(
        &format!("INSERT INTO {name} ({columns}) SELECT {columns} FROM incoming_{name} ON CONFLICT (id) DO NOTHING"),
        &[],
    )
}

/// How many of `ids` `table` does not hold, seen from inside `tx`.
pub fn count_missing(
    tx: &mut Transaction,
    table: Table,
    ids: &[&[u8]],
) -> std::result::Result<i64, postgres::Error> {
    let mut missing = 0;
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let n: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM unnest($1::bytea[]) AS t(id) \
                     WHERE NOT EXISTS (SELECT 1 FROM {} x WHERE x.id = t.id)",
                    table.name()
                ),
                &[&chunk],
            )?
            .get(0);
        missing += n;
    }
    Ok(missing)
}

impl SharedStore {
    /// The ids in `ids` that `table` does not hold, in their order.
    pub fn missing(&mut self, table: Table, ids: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        let sql = format!(
            "SELECT t.id FROM unnest($1::bytea[]) WITH ORDINALITY AS t(id, n) \
             WHERE NOT EXISTS (SELECT 1 FROM {} x WHERE x.id = t.id) ORDER BY t.n",
            table.name()
        );
        let mut missing = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<&[u8]> = chunk.iter().map(|id| &id[..]).collect();
            let rows = self
                .client
                .query(&sql, &[&list])
                .map_err(|e| self.failed("asking which content is missing", e))?;
            missing.extend(
                rows.iter()
                    .filter_map(|r| <[u8; 32]>::try_from(r.get::<_, &[u8]>(0)).ok()),
            );
        }
        Ok(missing)
    }

    /// Sends rows in one transaction of their own (content only: refs
    /// never name it until a later transaction does).
    pub fn send(
        &mut self,
        table: Table,
        write: impl FnOnce(&mut BinaryCopyInWriter) -> std::result::Result<(), postgres::Error>,
    ) -> Result<u64> {
        let doing = "sending content";
        let mut tx = match self.client.transaction() {
            Ok(tx) => tx,
            Err(e) => return Err(super::connect::explain(&self.shown, doing, &e)),
        };
        let sent = copy_into(&mut tx, table, write).and_then(|n| tx.commit().map(|()| n));
        sent.map_err(|e| super::connect::explain(&self.shown, doing, &e))
    }

    /// Every id `table` holds.
    pub fn all_ids(&mut self, table: Table) -> Result<Vec<[u8; 32]>> {
        let rows = self
            .client
            .query(&format!("SELECT id FROM {}", table.name()), &[])
            .map_err(|e| self.failed("listing content", e))?;
        Ok(rows
            .iter()
            .filter_map(|r| <[u8; 32]>::try_from(r.get::<_, &[u8]>(0)).ok())
            .collect())
    }

    /// The rows of `table` with these ids (columns as `Table::columns`).
    pub fn rows(&mut self, table: Table, ids: &[[u8; 32]]) -> Result<Vec<postgres::Row>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = ANY($1)",
            table.columns(),
            table.name()
        );
        let list: Vec<&[u8]> = ids.iter().map(|id| &id[..]).collect();
        self.client
            .query(&sql, &[&list])
            .map_err(|e| self.failed("reading content", e))
    }
}
