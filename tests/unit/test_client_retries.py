"""The client's retries, against a stub of the API on loopback: what is retried, how often,
after how long, and what a caller gets when retrying is not allowed or no longer helps."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tests.support.local_stack import free_port
from tests.support.stub_api import Reply, Request, stub_api, task_json
from vector_tasks_client import ApiError, DataItem, RetryPolicy, TransportError, VectorTasksClient
from vector_tasks_client.errors import UnexpectedAnswer

GATEWAY_503 = Reply(503, {"message": "Service Unavailable"}, {"x-amzn-RequestId": "gw-1"})


def scripted(*replies: Reply) -> Iterator[Reply]:
    """The replies in order, then 200 with a task for ever."""
    yield from replies
    while True:
        yield Reply(200, task_json("t"))


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(url: str, sleeps: Sleeps, attempts: int = 5) -> VectorTasksClient:
    return VectorTasksClient(url, retry=RetryPolicy(attempts=attempts), sleep=sleeps, rng=random.Random(7))


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_read_is_retried_on_429_and_5xx_until_it_succeeds(status: int) -> None:
    replies = scripted(Reply(status, {"message": "busy"}), Reply(status, {"message": "busy"}))
    sleeps = Sleeps()
    with stub_api(lambda _: next(replies)) as api:
        task = client(api.url, sleeps).upsertion.get("t")
    assert task.id == "t"
    assert len(api.requests) == 3
    assert len(sleeps) == 2


def test_backoff_is_exponential_with_full_jitter_and_retry_after_wins() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=3.0)
    rng = random.Random(1)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # the whole range is used, not only its start
    assert policy.delay(1, rng, retry_after=2.0) == 2.0
    assert policy.delay(1, rng, retry_after=60.0) == 3.0


def test_a_throttled_request_honours_retry_after() -> None:
    replies = scripted(Reply(429, {"message": "Too Many Requests"}, {"Retry-After": "2"}))
    sleeps = Sleeps()
    with stub_api(lambda _: next(replies)) as api:
        client(api.url, sleeps).upsertion.get("t")
    assert sleeps == [2.0]


def test_after_the_last_attempt_the_error_is_the_services_with_its_request_id() -> None:
    sleeps = Sleeps()
    with stub_api(lambda _: GATEWAY_503) as api, pytest.raises(ApiError) as raised:
        client(api.url, sleeps, attempts=3).upsertion.get("t")
    assert len(api.requests) == 3
    assert (raised.value.status, raised.value.message, raised.value.request_id) == (503, "Service Unavailable", "gw-1")
    assert str(raised.value) == "Service Unavailable (HTTP 503, request id gw-1)"


def test_a_create_is_retried_as_the_same_request_so_it_cannot_make_two_tasks() -> None:
    replies = scripted(GATEWAY_503, Reply(504, {"message": "Endpoint request timed out"}))
    with stub_api(lambda _: next(replies)) as api:
        client(api.url, Sleeps()).upsertion.create("local-hash-384", [DataItem(object_id="a")])
    bodies = [r.body for r in api.requests]
    assert len(bodies) == 3 and len(set(bodies)) == 1
    assert api.requests[0].json()["task_id"].startswith("task-")  # chosen before the first attempt


def test_a_restart_naming_its_attempt_is_retried_after_a_5xx_since_the_service_restarts_it_once() -> None:
    replies = scripted(
        Reply(503, {"error": {"code": "transition_in_progress", "message": "Still restarting", "request_id": "r-1"}}),
        Reply(200, task_json("t", "pending", attempt=2)),
    )
    with stub_api(lambda _: next(replies)) as api:
        restarted = client(api.url, Sleeps()).upsertion.restart("t", attempt=1)
    assert restarted.attempt == 2
    assert [r.query["attempt"] for r in api.requests] == ["1", "1"]  # the same request again


def test_a_restart_reads_the_attempt_it_restarts_when_none_is_given() -> None:
    replies = scripted(Reply(200, task_json("t", "done", attempt=3)), Reply(200, task_json("t", "pending", attempt=4)))
    with stub_api(lambda _: next(replies)) as api:
        client(api.url, Sleeps()).upsertion.restart("t")
    assert [r.path.rsplit("/", 1)[-1] for r in api.requests] == ["info", "restart"]
    assert api.requests[1].query["attempt"] == "3"


def test_a_restart_is_retried_when_throttled() -> None:
    replies = scripted(Reply(429, {"message": "Too Many Requests"}))
    with stub_api(lambda _: next(replies)) as api:
        client(api.url, Sleeps()).upsertion.restart("t", attempt=1)
    assert len(api.requests) == 2


def test_a_4xx_is_not_retried_and_carries_the_services_code_details_and_status() -> None:
    error = {
        "error": {
            "code": "validation_error",
            "message": "Request validation failed",
            "request_id": "r-2",
            "details": [{"field": "query.task_id", "reason": "String should match pattern", "type": "string_pattern"}],
        }
    }
    with stub_api(lambda _: Reply(422, error)) as api, pytest.raises(ApiError) as raised:
        client(api.url, Sleeps()).upsertion.get("t")
    assert len(api.requests) == 1
    assert raised.value.details[0].field == "query.task_id"
    assert str(raised.value).splitlines() == [
        "Request validation failed (HTTP 422 validation_error, request id r-2)",
        "  query.task_id: String should match pattern",
    ]


def test_an_answer_that_is_not_json_still_gives_a_message() -> None:
    with (
        stub_api(lambda _: Reply(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})) as api,
        pytest.raises(ApiError, match="<html>Bad Gateway</html>"),
    ):
        client(api.url, Sleeps(), attempts=1).upsertion.get("t")


def test_a_success_whose_body_is_not_the_documented_one_is_a_client_error_not_a_crash() -> None:
    with (
        stub_api(lambda _: Reply(200, {"tasks": "nope"}, {"x-amzn-RequestId": "r-3"})) as api,
        pytest.raises(UnexpectedAnswer, match=r"not a TaskList \(request id r-3\): tasks: Input should be"),
    ):
        client(api.url, Sleeps()).upsertion.list_tasks()


def test_no_connection_is_retried_even_for_a_restart_then_reported_as_not_sent() -> None:
    sleeps = Sleeps()
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransportError) as raised:
        client(closed, sleeps, attempts=3).upsertion.restart("t", attempt=1)
    assert raised.value.sent is False
    assert str(raised.value).startswith(f"cannot connect to {closed}: ")
    assert len(sleeps) == 2


def test_a_lost_answer_is_retried_for_a_read_and_for_a_restart_naming_its_attempt() -> None:
    calls: list[str] = []

    def answer(request: Request) -> Reply:
        calls.append(request.path)
        if len(calls) == 1:
            raise ConnectionAbortedError("dropped")  # the stub closes the connection, no answer
        return Reply(200, task_json("t"))

    with stub_api(answer) as api:
        assert client(api.url, Sleeps()).upsertion.get("t").id == "t"
        calls.clear()
        assert client(api.url, Sleeps()).upsertion.restart("t", attempt=1).id == "t"
    assert len(calls) == 2
