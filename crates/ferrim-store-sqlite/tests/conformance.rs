//! The shared store conformance suite, run against SQLite in a fresh temp directory.

use std::sync::Arc;

use ferrim_core::store::Store;
use ferrim_store_sqlite::SqliteStore;

async fn fresh_store() -> Arc<dyn Store> {
    // Leak the temp dir for the test's lifetime; it is removed when the process exits.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    Arc::new(SqliteStore::open(&dir).await.expect("open sqlite store"))
}

ferrim_core::store_conformance_tests!(fresh_store());
