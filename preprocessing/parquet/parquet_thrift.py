"""Field ids and enum values of the Parquet Thrift definition that the tensor writer uses.

Parquet's metadata is Thrift structs (``parquet.thrift`` in apache/parquet-format); decoded by
``preprocessing.parquet.thrift_compact`` a struct is ``{field_id: (type, value)}``, so code
that reads or edits one names its fields with these constants:
``meta[FILE_METADATA_ROW_GROUPS]``, not ``meta[4]``. Only what this package touches is here;
every other field is carried through unchanged. Names are ``<STRUCT>_<FIELD>`` in upper case,
with the struct's name shortened where it is long (``COLUMN_META_DATA`` for
``ColumnMetaData``).
"""

from __future__ import annotations

# --- enums ------------------------------------------------------------------------------

# Type (physical types)
INT32, INT64, FLOAT, DOUBLE = 1, 2, 4, 5
# FieldRepetitionType
REQUIRED, OPTIONAL, REPEATED = 0, 1, 2
# Encoding
RLE, BYTE_STREAM_SPLIT = 3, 9
# CompressionCodec, by the codec names pyarrow uses
CODECS = {"snappy": 1, "gzip": 2, "brotli": 4, "zstd": 6, "lz4_raw": 7}
# PageType
DATA_PAGE = 0

# --- struct fields ----------------------------------------------------------------------

# FileMetaData
FILE_METADATA_SCHEMA = 2  # list<SchemaElement>, depth-first, the root first
FILE_METADATA_NUM_ROWS = 3  # i64
FILE_METADATA_ROW_GROUPS = 4  # list<RowGroup>

# SchemaElement
SCHEMA_ELEMENT_TYPE = 1  # Type (leaves only)
SCHEMA_ELEMENT_REPETITION_TYPE = 3  # FieldRepetitionType (absent for the root)
SCHEMA_ELEMENT_NAME = 4  # string
SCHEMA_ELEMENT_NUM_CHILDREN = 5  # i32 (groups only)

# RowGroup
ROW_GROUP_COLUMNS = 1  # list<ColumnChunk>
ROW_GROUP_TOTAL_BYTE_SIZE = 2  # i64: uncompressed bytes of every column
ROW_GROUP_NUM_ROWS = 3  # i64
ROW_GROUP_FILE_OFFSET = 5  # i64: byte offset of the row group's first page
ROW_GROUP_TOTAL_COMPRESSED_SIZE = 6  # i64

# ColumnChunk
COLUMN_CHUNK_FILE_OFFSET = 2  # i64, deprecated: written as 0
COLUMN_CHUNK_META_DATA = 3  # ColumnMetaData
COLUMN_CHUNK_OFFSET_INDEX_OFFSET = 4  # i64
COLUMN_CHUNK_OFFSET_INDEX_LENGTH = 5  # i32
COLUMN_CHUNK_COLUMN_INDEX_OFFSET = 6  # i64
COLUMN_CHUNK_COLUMN_INDEX_LENGTH = 7  # i32
COLUMN_CHUNK_PAGE_INDEX_FIELDS = (
    COLUMN_CHUNK_OFFSET_INDEX_OFFSET,
    COLUMN_CHUNK_OFFSET_INDEX_LENGTH,
    COLUMN_CHUNK_COLUMN_INDEX_OFFSET,
    COLUMN_CHUNK_COLUMN_INDEX_LENGTH,
)

# ColumnMetaData
COLUMN_META_DATA_TYPE = 1  # Type
COLUMN_META_DATA_ENCODINGS = 2  # list<Encoding>
COLUMN_META_DATA_PATH_IN_SCHEMA = 3  # list<string>
COLUMN_META_DATA_CODEC = 4  # CompressionCodec
COLUMN_META_DATA_NUM_VALUES = 5  # i64: values and nulls, i.e. leaf-level entries
COLUMN_META_DATA_TOTAL_UNCOMPRESSED_SIZE = 6  # i64: pages and their headers
COLUMN_META_DATA_TOTAL_COMPRESSED_SIZE = 7  # i64: pages and their headers, as written
COLUMN_META_DATA_DATA_PAGE_OFFSET = 9  # i64
COLUMN_META_DATA_DICTIONARY_PAGE_OFFSET = 11  # i64: before the data pages when present
COLUMN_META_DATA_ENCODING_STATS = 13  # list<PageEncodingStats>
COLUMN_META_DATA_BLOOM_FILTER_OFFSET = 14  # i64
COLUMN_META_DATA_BLOOM_FILTER_LENGTH = 15  # i32
COLUMN_META_DATA_SIZE_STATISTICS = 16  # SizeStatistics

# PageEncodingStats
PAGE_ENCODING_STATS_PAGE_TYPE = 1  # PageType
PAGE_ENCODING_STATS_ENCODING = 2  # Encoding
PAGE_ENCODING_STATS_COUNT = 3  # i32: pages

# SizeStatistics
SIZE_STATISTICS_REPETITION_LEVEL_HISTOGRAM = 2  # list<i64>: values per level
SIZE_STATISTICS_DEFINITION_LEVEL_HISTOGRAM = 3  # list<i64>: values per level

# PageHeader
PAGE_HEADER_TYPE = 1  # PageType
PAGE_HEADER_UNCOMPRESSED_PAGE_SIZE = 2  # i32
PAGE_HEADER_COMPRESSED_PAGE_SIZE = 3  # i32
PAGE_HEADER_DATA_PAGE_HEADER = 5  # DataPageHeader

# DataPageHeader (format v1 data pages)
DATA_PAGE_HEADER_NUM_VALUES = 1  # i32: values and nulls
DATA_PAGE_HEADER_ENCODING = 2  # Encoding of the values
DATA_PAGE_HEADER_DEFINITION_LEVEL_ENCODING = 3  # Encoding
DATA_PAGE_HEADER_REPETITION_LEVEL_ENCODING = 4  # Encoding
