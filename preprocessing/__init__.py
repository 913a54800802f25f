"""Ray Data jobs that decode raw media in real dataset layouts into Parquet shards."""
