"""Published limits (README "Limits"). One place, so the API, the docs and the tests agree."""

MAX_ITEMS_PER_TASK = 10_000
MAX_OBJECT_ID_BYTES = 512
MAX_TASK_ID_LENGTH = 128
TASK_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_EMBEDDING_MODEL_ID_LENGTH = 128
# The Lambda synchronous invocation payload limit.
MAX_REQUEST_BODY_BYTES = 6 * 1024 * 1024
# One item, serialised as compact JSON. Keeps any single item well inside a stored chunk.
MAX_ITEM_BYTES = 256 * 1024

# A chunk is what one queue message asks a worker to do, and one `_bulk` request. Every bound
# holds for every chunk: the stored bound (its JSON compressed with zlib at level 1, as the
# store packs it) keeps a stored chunk far below DynamoDB's 400 KB item limit whatever the items
# look like; the JSON bound keeps a `_bulk` body far below OpenSearch's smallest request limit
# (10 MB) when items compress well. 200 items: a chunk's result lists at most 200 failures, at
# most 200 x (512-byte id + 1,000-byte detail) before compression, which a result item holds.
CHUNK_MAX_ITEMS = 200
CHUNK_MAX_BYTES = 1024 * 1024
CHUNK_MAX_STORED_BYTES = 300 * 1024
# The bounds before CHUNK_MAX_STORED_BYTES (100 items, 300 KB of JSON): a create interrupted
# before that release and retried after it stores the layout its task item already counts.
PREVIOUS_CHUNK_BOUNDS = {"max_items": 100, "max_bytes": 300 * 1024}

# The most texts a worker embeds before writing them: the worker is handed up to 10 chunks (its
# event source's BatchSize), whose vectors it writes together, since OpenSearch's cost per
# document falls with the size of a bulk; texts are embedded and written 1,000 at a time (5
# chunks of 200), what one batch held before, so a slow provider's batch fails no more work
# on a timeout than it did then.
EMBED_WRITE_MAX_ITEMS = 1_000

LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100

# Failures of a task are answered a page at a time (info's failures_offset / failures_limit).
FAILURES_DEFAULT_LIMIT = 1_000
FAILURES_MAX_LIMIT = 1_000
# One failure's detail, as stored and answered (see `cap_failure_detail`).
MAX_FAILURE_DETAIL_CHARS = 1_000
