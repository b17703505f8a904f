"""The service's published limits (README "Limits") as a caller has to respect them.

The client cannot import the service, so they are stated again here; a unit test
(tests/unit/test_client_contract.py) checks them against the service's own limits.
"""

MAX_ITEMS_PER_TASK = 10_000
MAX_OBJECT_ID_BYTES = 512
MAX_TASK_ID_LENGTH = 128
TASK_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_EMBEDDING_MODEL_ID_LENGTH = 128
# One upsertion item as compact JSON.
MAX_ITEM_BYTES = 256 * 1024
# JSON nesting the service accepts in a body (the body itself is a level, `items` another).
MAX_JSON_DEPTH = 64

# Lambda's synchronous payload limit applies to the event API Gateway builds from a request:
# the body as a JSON string (so every character JSON escapes counts twice or more), plus the
# headers and the request context. The allowance is what the CLI keeps for the latter.
MAX_EVENT_BYTES = 6 * 1024 * 1024
EVENT_ALLOWANCE_BYTES = 64 * 1024

LIST_MAX_LIMIT = 100
FAILURES_MAX_LIMIT = 1_000
