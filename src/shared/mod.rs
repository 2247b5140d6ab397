//! The shared store: a statectl store in a PostgreSQL database, which
//! stores on many hosts push to and pull from (`statectl push|pull URL`).
//! It holds the same content-addressed rows as an embedded store, under
//! the same ids, refs by name, and a journal whose events keep the store
//! they came from.

mod cache;
mod connect;
mod content;
mod gc;
mod journal;
mod models;
mod reads;
mod refs;
mod schema;
mod streams;
mod tls;
mod verify;
mod writes;

pub use cache::CacheStats;
pub use connect::{is_shared_url, shown_url};
pub use content::Table;
pub use gc::{SharedGc, SharedGcReport};
pub use journal::SharedEventFilter;
pub use refs::{
    Publication, Published, RemoteModel, RemoteStream, RemoteTag, StreamMove, StreamMovedDuringPush,
};
pub use schema::SHARED_SCHEMA_VERSION;
pub use streams::{DirectStreamMove, StreamNotAsExpected};
pub use writes::{DirectEntry, DirectState, DirectWrite, DirectWritten, StreamWritten};

use anyhow::Result;

/// An open connection to a shared store whose schema this build reads.
pub struct SharedStore {
    client: postgres::Client,
    /// The URL without its password, for messages.
    shown: String,
    /// Set by the first direct write: its journal entries' origin.
    writer: Option<writes::WriterOrigin>,
    /// What reads read before, by id (off unless asked for).
    cache: Option<cache::ReadCache>,
}

impl SharedStore {
    /// Connects and checks the schema: a database without a statectl store
    /// (offer `statectl init`) or with a newer one is refused.
    pub fn open(url: &str) -> Result<SharedStore> {
        let mut store = SharedStore::connect(url)?;
        schema::check(&mut store.client, &store.shown)?;
        Ok(store)
    }

    /// Creates the statectl tables in the database, or brings them up to
    /// this build's schema (nothing when they are already there). Returns
    /// the schema it found (0: none) when it changed anything.
    pub fn init(url: &str) -> Result<(SharedStore, Option<i32>)> {
        let mut store = SharedStore::connect(url)?;
        let created = schema::create(&mut store.client, &store.shown)?;
        Ok((store, created))
    }

    fn connect(url: &str) -> Result<SharedStore> {
        let (client, shown) = connect::connect(url)?;
        Ok(SharedStore {
            client,
            shown,
            writer: None,
            cache: None,
        })
    }

    /// Keeps what reads read, up to `bytes` (0: no cache), so repeated
    /// reads of the same states ask the server only for their tags.
    pub fn set_read_cache(&mut self, bytes: usize) {
        self.cache = (bytes > 0).then(|| cache::ReadCache::new(bytes));
    }

    /// The read cache's size and hits, if there is one.
    pub fn read_cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }

    /// The URL, password removed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Wraps a server error with what was being done, password-free.
    fn failed(&self, doing: &str, e: postgres::Error) -> anyhow::Error {
        connect::explain(&self.shown, doing, &e)
    }
}
