"""The end-to-end tests, collected again here so they run against the LocalStack `local_stack`."""

from tests.e2e.test_scale import test_ten_thousand_items_reach_done_with_every_item_indexed
from tests.e2e.test_walkthrough import (
    test_errors_reach_the_client_in_the_documented_shape,
    test_upsert_then_delete_half_plus_unknown_ids_leaves_exactly_the_rest,
)

__all__ = [
    "test_errors_reach_the_client_in_the_documented_shape",
    "test_ten_thousand_items_reach_done_with_every_item_indexed",
    "test_upsert_then_delete_half_plus_unknown_ids_leaves_exactly_the_rest",
]
