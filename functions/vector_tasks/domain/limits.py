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

# A chunk is what one queue message asks a worker to do. Both bounds hold for every chunk:
# the byte bound keeps a stored chunk far below DynamoDB's 400 KB item limit.
CHUNK_MAX_ITEMS = 100
CHUNK_MAX_BYTES = 300 * 1024

LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100

# Failures of a task are answered a page at a time (info's failures_offset / failures_limit).
FAILURES_DEFAULT_LIMIT = 1_000
FAILURES_MAX_LIMIT = 1_000
# One failure's detail, as stored and answered (see `cap_failure_detail`).
MAX_FAILURE_DETAIL_CHARS = 1_000
