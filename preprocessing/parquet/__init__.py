"""The shard format and its writer.

- ``shards``: atomic shard writes and Arrow's fixed-shape tensor columns (read and build).
- ``tensor_parquet``: the Parquet writer (pyarrow for plain columns, our pages for tensors).
- ``tensor_pages``: one tensor column's data pages, encoded as rows arrive.
- ``thrift_compact``: Thrift's compact protocol (Parquet page headers and footer).
- ``parquet_thrift``: the field ids and enum values of ``parquet.thrift`` the writer uses.
"""
