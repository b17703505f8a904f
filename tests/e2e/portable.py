"""The end-to-end tests that hold on any deployment of the stack: the LocalStack and AWS tiers
collect these (`from tests.e2e.portable import *`) with their own `local_stack` fixture.
Left out: tests of the local stack itself (Ctrl-C, `sam local invoke` against it)."""

from tests.e2e.test_front import (
    test_a_body_that_is_not_utf8_is_a_client_error,
    test_a_method_without_a_route_is_403_missing_authentication_token,
    test_a_text_body_is_415,
    test_head_without_a_route_is_403_without_a_body,
)
from tests.e2e.test_lifecycle import test_cancel_then_restart_failed_then_restart_all
from tests.e2e.test_scale import test_ten_thousand_items_reach_done_with_every_item_indexed
from tests.e2e.test_walkthrough import (
    test_a_route_that_is_not_declared_answers_as_api_gateway_does,
    test_errors_reach_the_client_in_the_documented_shape,
    test_upsert_then_delete_half_plus_unknown_ids_leaves_exactly_the_rest,
)

__all__ = [
    "test_a_body_that_is_not_utf8_is_a_client_error",
    "test_a_method_without_a_route_is_403_missing_authentication_token",
    "test_a_route_that_is_not_declared_answers_as_api_gateway_does",
    "test_a_text_body_is_415",
    "test_cancel_then_restart_failed_then_restart_all",
    "test_errors_reach_the_client_in_the_documented_shape",
    "test_head_without_a_route_is_403_without_a_body",
    "test_ten_thousand_items_reach_done_with_every_item_indexed",
    "test_upsert_then_delete_half_plus_unknown_ids_leaves_exactly_the_rest",
]
