"""An independent SigV4 verifier, written from AWS's description of the algorithm (not with
botocore), to check what the client's signer sends: it recomputes the signature of a request
as received, from the secret key, and compares."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def canonical_request(
    method: str, target: str, headers: dict[str, str], signed: list[str], payload_hash: str, *, s3: bool = False
) -> str:
    parts = urlsplit(target)
    # Every service but S3 encodes the (already encoded) path once more.
    path = parts.path or "/"
    uri = path if s3 else quote(path, safe="/~")
    header_lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    return "\n".join([method, uri, canonical_query(parts.query), header_lines, ";".join(signed), payload_hash])


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str
    access_key: str | None = None
    region: str | None = None
    service: str | None = None


def verify(method: str, target: str, headers: dict[str, str], body: bytes, secrets: dict[str, str]) -> Verdict:
    """Whether `headers` (names in lower case) carry a valid signature of the request."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        return Verdict(False, f"no SigV4 Authorization header: {headers.get('authorization')!r}")
    key, date, region, service = match["key"], match["date"], match["region"], match["service"]
    signed = match["signed"].split(";")
    if signed != sorted(signed) or not {"host", "x-amz-date"} <= set(signed):
        return Verdict(False, f"signed headers must be sorted and include host and x-amz-date: {signed}")
    if missing := [name for name in signed if name not in headers]:
        return Verdict(False, f"signed headers not sent: {missing}")
    amz_date = headers["x-amz-date"]
    if not amz_date.startswith(date):
        return Verdict(False, f"x-amz-date {amz_date} is not of the credential's date {date}")
    if key not in secrets:
        return Verdict(False, f"unknown access key {key}")
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    request = canonical_request(method, target, headers, signed, payload_hash)
    scope = f"{date}/{region}/{service}/aws4_request"
    expected = hmac.new(
        signing_key(secrets[key], date, region, service), string_to_sign(amz_date, scope, request).encode(), "sha256"
    ).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return Verdict(False, "signature does not match")
    return Verdict(True, "valid", key, region, service)
