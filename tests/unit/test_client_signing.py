"""The client's SigV4 signing (botocore's signer), checked by a verifier of our own that
recomputes each signature as a server would; the verifier itself checked against a signature
AWS publishes."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from botocore.credentials import Credentials

from tests.support.sigv4 import canonical_request, signing_key, string_to_sign, verify
from tests.support.stub_api import Answer, Reply, Request, stub_api, task_json
from vector_tasks_client import ApiError, SigV4Signer, VectorTasksClient
from vector_tasks_client.errors import CredentialsError
from vector_tasks_client.models import DataItem, RestartScope, TaskStatus
from vector_tasks_client.signing import region_of_endpoint

ACCESS_KEY, SECRET = "AKIDCLIENTTEST", "client/test+secret/KEY"
TOKEN = "session-token-from-sts"


def test_the_verifier_reproduces_the_signature_aws_documents() -> None:
    """AWS's worked example (S3 GET Object, its documentation's keys): canonical request,
    string to sign and signature as published. A verifier that is wrong fails here."""
    empty = hashlib.sha256(b"").hexdigest()
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": empty,
        "x-amz-date": "20130524T000000Z",
    }
    request = canonical_request("GET", "/test.txt", headers, sorted(headers), empty, s3=True)
    sts = string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", request)
    assert sts.endswith("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    key = signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
    signature = hmac.new(key, sts.encode(), "sha256").hexdigest()
    assert signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def _verifying() -> tuple[list[str], Answer]:
    """A stub of the API that answers only requests signed with SECRET, for execute-api in
    eu-west-1, with the session token; `verdicts` records why it accepted or refused each."""
    verdicts: list[str] = []

    def answer(request: Request) -> Reply:
        verdict = verify(request.method, request.target, request.headers, request.body, {ACCESS_KEY: SECRET})
        reason = verdict.reason
        if verdict.valid and (verdict.region, verdict.service) != ("eu-west-1", "execute-api"):
            reason = f"signed for {verdict.service} in {verdict.region}"
        elif verdict.valid and request.headers.get("x-amz-security-token") != TOKEN:
            reason = "no session token"
        verdicts.append(reason)
        if reason != "valid":
            return Reply(403, {"message": f"The request signature we calculated does not match: {reason}"})
        if request.path.endswith("/list"):
            return Reply(200, {"tasks": [], "offset": 0, "limit": 20, "next_offset": None})
        return Reply(200, task_json("a:b.c-d_e", kind="deletion" if "deletion" in request.path else "upsertion"))

    return verdicts, answer


def _client(url: str, secret: str = SECRET) -> VectorTasksClient:
    signer = SigV4Signer(Credentials(ACCESS_KEY, secret, TOKEN), region="eu-west-1")
    return VectorTasksClient(url + "/prod", signer=signer)


def test_every_operation_is_signed_so_that_a_server_recomputing_it_accepts() -> None:
    verdicts, answer = _verifying()
    with stub_api(answer) as api:
        client = _client(api.url)
        client.upsertion.create("local-hash-384", [DataItem(object_id="é/1", payload={"text": "a b+c"})], "a:b.c-d_e")
        client.upsertion.get("a:b.c-d_e", failures_offset=3, failures_limit=7)
        client.upsertion.list_tasks(TaskStatus.DONE, offset=20, limit=100)
        client.upsertion.cancel("a:b.c-d_e")
        client.deletion.restart("a:b.c-d_e", RestartScope.FAILED, attempt=2)
        client.deletion.create("local-hash-384", ["x y", "z&w=v"], "a:b.c-d_e")
    assert verdicts == ["valid"] * 6
    # The query was sent in the form that is signed, the task id's ':' percent-encoded.
    assert (
        api.requests[1].target
        == "/prod/internal/upsertion-tasks/info?task_id=a%3Ab.c-d_e&failures_offset=3&failures_limit=7"
    )


def test_a_wrong_secret_is_refused_by_the_verifier_and_reported_with_the_gateway_message() -> None:
    verdicts, answer = _verifying()
    with stub_api(answer) as api, pytest.raises(ApiError) as raised:
        _client(api.url, secret="not-the-secret").upsertion.get("t")
    assert verdicts == ["signature does not match"]
    assert raised.value.status == 403 and raised.value.code is None
    assert "signature we calculated does not match" in str(raised.value)


def test_each_retry_is_signed_afresh() -> None:
    answers = iter([Reply(503, {"message": "Service Unavailable"}), Reply(200, task_json("t"))])
    signatures: list[str] = []

    def answer(request: Request) -> Reply:
        assert verify(request.method, request.target, request.headers, request.body, {ACCESS_KEY: SECRET}).valid
        signatures.append(request.headers["authorization"])
        return next(answers)

    with stub_api(answer) as api:
        client = _client(api.url)
        client.transport.sleep = lambda _: None
        client.upsertion.get("t")
    assert len(signatures) == 2


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod", "eu-west-1"),
        ("https://a1b2c3-vpce-0abc.execute-api.ap-south-2.vpce.amazonaws.com/dev", "ap-south-2"),
        ("https://a1b2c3.execute-api.cn-north-1.amazonaws.com.cn/prod", "cn-north-1"),
        ("https://tasks.example.com/prod", None),
    ],
)
def test_the_region_is_read_from_an_execute_api_host(endpoint: str, region: str | None) -> None:
    assert region_of_endpoint(endpoint) == region


def test_credentials_and_region_come_from_the_aws_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    signer = SigV4Signer.from_aws_config("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod")
    assert signer.region == "eu-west-1"
    with pytest.raises(CredentialsError, match="no region"):
        SigV4Signer.from_aws_config("https://tasks.example.com/prod")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError, match="no AWS credentials found"):
        SigV4Signer.from_aws_config("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod")
    with pytest.raises(CredentialsError, match="cannot read the AWS configuration"):
        SigV4Signer.from_aws_config("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod", profile="missing")
