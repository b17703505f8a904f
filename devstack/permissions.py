"""Each function's role, as template.yaml declares it, checked on every AWS call it makes.

The roles are what `sam deploy` would create: aws-sam-translator expands the template (policy
templates such as SQSSendMessagePolicy included) and the `AWS::IAM::Role` it generates for each
function and state machine is read back, its intrinsics resolved against the local resources.

Enforcement is a botocore `before-call` hook on every session (boto3's default session
included, whenever it is created). It knows which function is calling: in a function's
container (devstack.function_host) the whole process acts as its role (`act_as_for_process`);
in the integration tier's single process a ContextVar says so (`acting_as`, set by
`InProcessFunction` and by the SQS pollers); calls made outside any function (stack set-up,
the tests' own calls) are not checked. A call the role does not allow gets the error AWS answers,
as a botocore ClientError, without reaching moto.

State machines call services through their integrations inside moto, where nothing can be
hooked: `guard_definition` checks each Task state against the state machine's role when the
machine is created and replaces a denied one by a Fail state with the error AWS would raise.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse

from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, Template

log = logging.getLogger("devstack.permissions")

# The AWS managed policies the roles use: those SAM attaches to the roles it creates, and the
# X-Ray one the template's own roles attach. They have no document in the template; these are
# their actions (all on Resource "*"). An ARN not listed here fails loudly.
AWS_MANAGED_POLICIES: dict[str, tuple[str, ...]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": (
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ),
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": (
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    ),
}


# -- policies ------------------------------------------------------------------------------


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters, `?` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Statement:
        unsupported = set(raw) - {"Sid", "Effect", "Action", "Resource"}
        if unsupported:
            raise ValueError(f"policy statement keys {sorted(unsupported)} are not supported locally: {raw}")
        if raw["Effect"] not in ("Allow", "Deny"):
            raise ValueError(f"policy statement effect {raw['Effect']!r}")
        return cls(raw["Effect"], _as_tuple(raw["Action"]), _as_tuple(raw.get("Resource", "*")))

    def applies(self, action: str, resource: str) -> bool:
        """Action names match case-insensitively, resource ARNs case-sensitively."""
        return any(_pattern(a, True).fullmatch(action) for a in self.actions) and any(
            _pattern(r, False).fullmatch(resource) for r in self.resources
        )


@dataclass(frozen=True)
class Role:
    name: str
    statements: tuple[Statement, ...]

    def decide(self, action: str, resource: str) -> str:
        """'allowed', 'explicit deny' or 'no allow', as IAM evaluates an identity-based policy."""
        matching = [s for s in self.statements if s.applies(action, resource)]
        if any(s.effect == "Deny" for s in matching):
            return "explicit deny"
        return "allowed" if matching else "no allow"

    def to_json(self) -> dict[str, Any]:
        """The role as a function's container receives it (devstack.function_host)."""
        return {"name": self.name, "statements": [asdict(s) for s in self.statements]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Role:
        statements = tuple(
            Statement(s["effect"], tuple(s["actions"]), tuple(s["resources"])) for s in data["statements"]
        )
        return cls(data["name"], statements)

    def denial(self, session_name: str, requests: list[tuple[str, str]]) -> str | None:
        """AWS's message for the first request (action, resource) the role does not allow."""
        for action, resource in requests:
            decision = self.decide(action, resource)
            if decision != "allowed":
                reason = (
                    "with an explicit deny in an identity-based policy"
                    if decision == "explicit deny"
                    else f"because no identity-based policy allows the {action} action"
                )
                return (
                    f"User: arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/{self.name}/{session_name} "
                    f"is not authorized to perform: {action} on resource: {resource} {reason}"
                )
        return None


# -- what a request asks for ---------------------------------------------------------------


def _table_arn(region: str, table: str, index: str | None = None) -> str:
    arn = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def queue_arn(region: str, queue_url: str) -> str:
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


# DynamoDB authorizes each element of a transaction as the single-item action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
# SQS authorizes a batch as the single-message action.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def authorization_requests(prefix: str, operation: str, params: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes for one API call. An operation whose
    resource is not known here is checked on resource "*", as AWS checks actions that have no
    resource type: a role that scopes it to an ARN is then denied (stricter, never gentler)."""
    if prefix == "dynamodb":
        if operation == "TransactWriteItems":
            return [
                (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(region, body["TableName"]))
                for element in params["TransactItems"]
                for kind, body in element.items()
            ]
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", _table_arn(region, e["Get"]["TableName"])) for e in params["TransactItems"]]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [(f"dynamodb:{operation}", _table_arn(region, table)) for table in params["RequestItems"]]
        if "TableName" in params:
            return [(f"dynamodb:{operation}", _table_arn(region, params["TableName"], params.get("IndexName")))]
        if "StreamArn" in params:  # DynamoDB Streams (signed as dynamodb): DescribeStream, GetShardIterator
            return [(f"dynamodb:{operation}", params["StreamArn"])]
        if "ShardIterator" in params:
            # Opaque on AWS, which authorizes it as its stream; moto's names the stream before "|".
            return [(f"dynamodb:{operation}", params["ShardIterator"].split("|", 1)[0])]
    if prefix == "sqs":
        action = f"sqs:{_SQS_BATCH_ACTIONS.get(operation, operation)}"
        if "QueueUrl" in params:
            return [(action, queue_arn(region, params["QueueUrl"]))]
        if operation == "GetQueueUrl":
            account = params.get("QueueOwnerAWSAccountId", LOCAL_ACCOUNT)
            return [(action, f"arn:aws:sqs:{region}:{account}:{params['QueueName']}")]
    if prefix == "states":
        arn = params.get("executionArn") or params.get("stateMachineArn")
        if arn:
            return [(f"states:{operation}", arn)]
    if prefix == "events" and operation == "PutEvents":
        buses = {entry.get("EventBusName") or "default" for entry in params["Entries"]}
        return [
            (
                "events:PutEvents",
                bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{LOCAL_ACCOUNT}:event-bus/{bus}",
            )
            for bus in sorted(buses)
        ]
    if prefix == "bedrock" and "modelId" in params:
        model = params["modelId"]
        arn = model if model.startswith("arn:") else f"arn:aws:bedrock:{region}::foundation-model/{model}"
        return [(f"bedrock:{operation}", arn)]
    if prefix == "s3" and "Bucket" in params:
        # S3 authorizes reads of an object as s3:GetObject on it, listings as s3:ListBucket.
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        if operation in ("GetObject", "HeadObject"):
            return [("s3:GetObject", f"{bucket}/{params['Key']}")]
        if operation in ("ListObjectsV2", "ListObjects"):
            return [("s3:ListBucket", bucket)]
        if operation == "PutObject":
            return [("s3:PutObject", f"{bucket}/{params['Key']}")]
    if prefix == "sagemaker" and "EndpointName" in params:
        endpoint = params["EndpointName"].lower()  # SageMaker ARNs are lower case
        return [(f"sagemaker:{operation}", f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT}:endpoint/{endpoint}")]
    return [(f"{prefix}:{operation}", "*")]


# -- who is calling --------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    role: Role
    session_name: str  # the function name, as Lambda names its role session


_CALLER: ContextVar[Caller | None] = ContextVar("devstack_caller", default=None)
# A function's container acts as its role in every thread, whatever context the thread has.
_PROCESS_CALLER: Caller | None = None


def _caller() -> Caller | None:
    return _CALLER.get() or _PROCESS_CALLER


def act_as_for_process(role: Role, session_name: str) -> None:
    """Every AWS call this process makes from now on uses `role` (a function's container)."""
    global _PROCESS_CALLER
    install_hook()
    _PROCESS_CALLER = Caller(role, session_name)


@contextlib.contextmanager
def acting_as(role: Role | None, session_name: str) -> Iterator[None]:
    """AWS calls made in this block (in this thread, or in a copy of its context) use `role`;
    None leaves them unchecked."""
    if role is None:
        yield
        return
    token = _CALLER.set(Caller(role, session_name))
    try:
        yield
    finally:
        _CALLER.reset(token)


# -- the botocore hook -----------------------------------------------------------------------

_PARAMS_KEY = "devstack_api_params"


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _caller() is not None:
        context[_PARAMS_KEY] = params


def _check_call(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    caller = _caller()
    if caller is None:
        return None
    prefix = model.service_model.signing_name  # the IAM service prefix: states, bedrock, ...
    region = context.get("client_region") or LOCAL_REGION
    requests = authorization_requests(prefix, model.name, context.get(_PARAMS_KEY, {}), region)
    message = caller.role.denial(caller.session_name, requests)
    if message is None:
        return None
    log.warning("denied: %s", message)
    code = "AccessDenied" if prefix in ("sqs", "s3") else "AccessDeniedException"
    status = 403 if prefix == "s3" else 400
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": headers},
    }
    return AWSResponse(f"https://{prefix}.{region}.amazonaws.com/", status, headers, None), parsed


_HANDLERS = (("before-parameter-build", _remember_params), ("before-call", _check_call))


def install_hook() -> None:
    """Check every botocore session's calls: sessions created from now on (botocore registers its
    BUILTIN_HANDLERS on each, as moto does for its own hook) and boto3's current default session.
    Clients copy their session's handlers when built, so this runs before any handler does."""
    for entry in _HANDLERS:
        if entry not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(entry)
    if boto3.DEFAULT_SESSION is not None:
        events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")
        for event, handler in _HANDLERS:
            events.unregister(event, handler)
            events.register(event, handler)


# -- roles from the template -----------------------------------------------------------------


def _packaged(document: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` hands it to the transform: code locations in S3."""
    packaged = copy.deepcopy(document)
    function_globals = packaged.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = "s3://local/code.zip"
    for resource in packaged["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://local/{key}.zip"
    return packaged


@cache
def _translated(document_json: str) -> dict[str, Any]:
    from samtranslator.parser.parser import Parser  # imported here: half a second, devstack only
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=LOCAL_REGION))
    cloudformation: dict[str, Any] = translator.translate(
        json.loads(document_json),
        # The parameters' defaults: SAM copies policy statements with their intrinsics, which
        # Template.resolve evaluates with the stack's own values (so one translation serves all).
        parameter_values={},
        get_managed_policy_map=dict,  # only SAM's own managed policies, by ARN, are expected
    )
    return cloudformation


def transform(template: Template) -> dict[str, Any]:
    """template.yaml as CloudFormation, as the SAM transform produces it (about 0.1 s; cached)."""
    return _translated(json.dumps(_packaged(template.document), sort_keys=True))


class Permissions:
    """The roles of a template's functions and state machines, resolved against `template.physical`."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.cloudformation = transform(template)
        install_hook()

    def role_document(self, logical_id: str) -> tuple[str, dict[str, Any]]:
        """The logical id and properties of the role SAM generates for a function or state machine."""
        resource = self.cloudformation["Resources"][logical_id]
        role_ref = resource["Properties"].get("Role") or resource["Properties"].get("RoleArn")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise ValueError(f"{logical_id}: only roles SAM generates from Policies are supported locally")
        role_id = role_ref["Fn::GetAtt"][0]
        role = self.cloudformation["Resources"][role_id]
        if role["Type"] != "AWS::IAM::Role":
            raise ValueError(f"{logical_id}: its role {role_id} is a {role['Type']}")
        return role_id, role["Properties"]

    def role(self, logical_id: str) -> Role:
        role_id, props = self.role_document(logical_id)
        statements: list[Statement] = []
        for arn in self.template.resolve(props.get("ManagedPolicyArns", [])):
            if arn not in AWS_MANAGED_POLICIES:
                raise ValueError(f"{role_id}: managed policy {arn} has no local copy (devstack/permissions.py)")
            statements.append(Statement("Allow", AWS_MANAGED_POLICIES[arn], ("*",)))
        for document in [policy["PolicyDocument"] for policy in props.get("Policies", [])] + self._attached(role_id):
            statements.extend(Statement.parse(s) for s in self.template.resolve(document)["Statement"])
        if "PermissionsBoundary" in props:
            raise ValueError(f"{role_id}: permissions boundaries are not supported locally")
        return Role(role_id, tuple(statements))

    def _attached(self, role_id: str) -> list[dict[str, Any]]:
        """The documents of the AWS::IAM::Policy resources attached to the role (whose condition holds)."""
        documents = []
        for logical_id, resource in self.cloudformation["Resources"].items():
            if resource["Type"] != "AWS::IAM::Policy" or not self.template.conditions.get(
                resource.get("Condition", ""), True
            ):
                continue
            if {"Ref": role_id} in resource["Properties"].get("Roles", []):
                documents.append(resource["Properties"]["PolicyDocument"])
            elif resource["Properties"].get("Users") or resource["Properties"].get("Groups"):
                raise ValueError(f"{logical_id}: policies for users or groups are not supported locally")
        return documents

    def guard_definition(self, logical_id: str, definition: str) -> str:
        """The state machine definition with each Task its role may not perform replaced by a Fail
        state raising the error AWS would. Locally that state's Retry and Catch are skipped."""
        role = self.role(logical_id)
        document = json.loads(definition)
        guard_states(document["States"], role, logical_id)
        return json.dumps(document)


# -- state machine integrations --------------------------------------------------------------

_INTEGRATION = re.compile(r"arn:aws:states:::(?:aws-sdk:)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z]+)(?:\.\w+)?")
_ERROR_PREFIX = {"dynamodb": "DynamoDB", "sqs": "SQS", "states": "StepFunctions", "lambda": "Lambda"}


def _integration_requests(resource: str, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    matched = _INTEGRATION.fullmatch(resource)
    if matched is None:
        raise ValueError(f"Task resource {resource} is not supported locally")
    service, action = matched["service"], matched["action"]
    dynamic = sorted(k for k in parameters if k.endswith(".$") and k[:-2] in ("TableName", "QueueUrl"))
    if dynamic:
        raise ValueError(f"Task {resource}: {dynamic} chosen at run time cannot be checked locally")
    return authorization_requests(service, action[0].upper() + action[1:], parameters, LOCAL_REGION)


def guard_states(states: dict[str, Any], role: Role, session_name: str) -> None:
    for name, state in list(states.items()):
        for branch in state.get("Branches", []):
            guard_states(branch["States"], role, session_name)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                guard_states(state[key]["States"], role, session_name)
        if state["Type"] != "Task":
            continue
        requests = _integration_requests(state["Resource"], state.get("Parameters", {}))
        message = role.denial(session_name, requests)
        if message is not None:
            service = requests[0][0].split(":", 1)[0]
            code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
            states[name] = {
                "Type": "Fail",
                "Comment": "devstack: the state machine's role does not allow this Task (its Retry/Catch skipped)",
                "Error": f"{_ERROR_PREFIX.get(service, service)}.AccessDeniedException",
                "Cause": f"{message} (Service: {service}, Status Code: 400, Error Code: {code})",
            }
