"""Row sources (parquet shards, JSONL + image folders) and the deterministic sharded stream over them."""
