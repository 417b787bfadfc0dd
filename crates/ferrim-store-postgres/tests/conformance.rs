//! The shared store conformance suite, run against PostgreSQL in a fresh schema per test
//! (see `ferrim_store_postgres::testing` for where the database comes from).

use std::sync::Arc;

use ferrim_core::store::Store;

async fn fresh_store() -> Arc<dyn Store> {
    Arc::new(ferrim_store_postgres::testing::fresh_store().await)
}

ferrim_core::store_conformance_tests!(fresh_store());
