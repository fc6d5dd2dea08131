//! Benchmarks live in `benches/` (criterion) and `ingest_vs_duckdb.py` (side by side with DuckDB).
