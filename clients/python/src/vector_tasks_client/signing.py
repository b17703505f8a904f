"""SigV4 signing of API requests with the caller's AWS credentials, by botocore's signer."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from botocore.session import Session

from vector_tasks_client.errors import CredentialsError

# API Gateway's service name in SigV4 (IAM auth on a REST API).
EXECUTE_API = "execute-api"
# https://{api-id}.execute-api.{region}.amazonaws.com, private APIs through a VPC endpoint, China.
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$")


def region_of_endpoint(endpoint: str) -> str | None:
    """The region in an execute-api host name; None for a custom domain."""
    match = _EXECUTE_API_HOST.search(urlsplit(endpoint).hostname or "")
    return match.group(1) if match else None


class SigV4Signer:
    """Signs each request as `aws` would for `service` in `region`.

    Refreshable credentials (SSO, assumed roles, instance roles) are read once per request, as
    one frozen set, so a refresh can never mix an old key with a new secret.
    """

    def __init__(self, credentials: Credentials, region: str, service: str = EXECUTE_API) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service

    @classmethod
    def from_aws_config(cls, endpoint: str, region: str | None = None, profile: str | None = None) -> SigV4Signer:
        """Credentials and region as the AWS CLI finds them (environment, ~/.aws, SSO, instance
        role); the region of an execute-api endpoint is read from its host name unless given."""
        try:
            session = Session(profile=profile)
            credentials = session.get_credentials()
            configured_region = session.get_config_variable("region")
        except BotoCoreError as exc:
            raise CredentialsError(f"cannot read the AWS configuration: {exc}") from None
        if credentials is None:
            raise CredentialsError(
                "no AWS credentials found to sign requests to "
                f"{endpoint} (environment, ~/.aws/credentials, SSO or instance role)"
            )
        region = region or region_of_endpoint(endpoint) or configured_region
        if not region:
            raise CredentialsError(f"no region to sign requests to {endpoint} for: give one (region, --region)")
        return cls(credentials, region)

    def __call__(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        try:
            frozen = self._credentials.get_frozen_credentials()
        except BotoCoreError as exc:  # a refresh that failed: expired SSO session, say
            raise CredentialsError(f"cannot refresh the AWS credentials: {exc}") from None
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(frozen, self.service, self.region).add_auth(request)
        return dict(request.headers.items())
