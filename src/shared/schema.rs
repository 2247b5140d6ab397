//! The shared store's schema: created by `statectl init URL` in one
//! transaction, checked by every other command before it reads or writes.

use anyhow::{anyhow, Result};
use postgres::{Client, GenericClient};

const MIGRATIONS: &[&str] = &[
    include_str!("../../shared_migrations/0001_shared_store.sql"),
    include_str!("../../shared_migrations/0002_gc_marks.sql"),
];

/// The shared-store schema this build reads and writes.
pub const SHARED_SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Any number: only statectl's `init` takes this advisory lock, so two
/// inits at once create the tables once.
const INIT_LOCK: i64 = 0x5354_4154_4543_544c;

fn found_version(client: &mut impl GenericClient, shown: &str) -> Result<Option<i32>> {
    let explain = |e| super::connect::explain(shown, "reading the schema version", &e);
    let exists: bool = client
        .query_one("SELECT to_regclass('statectl_schema') IS NOT NULL", &[])
        .map_err(explain)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt("SELECT max(version) FROM statectl_schema", &[])
        .map_err(explain)?;
    Ok(row.and_then(|r| r.get::<_, Option<i32>>(0)))
}

fn refuse_newer(found: i32, shown: &str) -> Result<()> {
    if found > SHARED_SCHEMA_VERSION {
        return Err(anyhow!(
            "the shared store at {shown} has schema {found}, newer than this statectl reads ({SHARED_SCHEMA_VERSION}); upgrade statectl"
        ));
    }
    Ok(())
}

/// Refuses a database without a statectl store, or with a newer one.
pub fn check(client: &mut Client, shown: &str) -> Result<()> {
    match found_version(client, shown)? {
        None => Err(anyhow!(
            "{shown} has no statectl store; create one there: statectl init {shown}"
        )),
        Some(found) if found < SHARED_SCHEMA_VERSION => Err(anyhow!(
            "the shared store at {shown} has schema {found}; bring it up to date: statectl init {shown}"
        )),
        Some(found) => refuse_newer(found, shown),
    }
}

/// Creates or upgrades the schema in one transaction; returns the version
/// it found (0: none) when it changed anything.
pub fn create(client: &mut Client, shown: &str) -> Result<Option<i32>> {
    let explain = |e| super::connect::explain(shown, "creating the statectl tables", &e);
    let mut tx = client.transaction().map_err(explain)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK])
        .map_err(explain)?;
    let found = found_version(&mut tx, shown)?.unwrap_or(0);
    refuse_newer(found, shown)?;
    if found == SHARED_SCHEMA_VERSION {
        return Ok(None);
    }
    for (number, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).map_err(explain)?;
        tx.execute(
            "UPDATE statectl_schema SET version = $1",
            &[&(number as i32 + 1)],
        )
        .map_err(explain)?;
    }
    tx.commit().map_err(explain)?;
    Ok(Some(found))
}
