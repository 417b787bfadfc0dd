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

/// The same suite through the user cache that `ferrim serve` puts in front of the store.
mod through_the_user_cache {
    use std::sync::Arc;

    use ferrim_core::store::cached::CachedStore;
    use ferrim_core::store::Store;

    async fn cached_store() -> Arc<dyn Store> {
        Arc::new(CachedStore::new(super::fresh_store().await, None))
    }

    ferrim_core::store_conformance_tests!(cached_store());
}
