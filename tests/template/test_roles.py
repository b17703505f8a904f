"""The roles SAM generates from template.yaml: every resource a policy names is declared in the
template, of the service the action belongs to, or is one of the few external ARN patterns the
code needs. The local stack resolves ARNs against what it created, so a policy naming something
else could pass locally and fail on AWS, or grant what nothing uses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devstack.permissions import AWS_MANAGED_POLICIES, Permissions
from devstack.template import LOCAL_PSEUDO_PARAMETERS, Template, load_template

# Resources outside the stack that the code calls, as written in template.yaml (after Fn::Sub of
# the pseudo parameters only).
EXTERNAL = {
    "bedrock": [  # the registered Bedrock models (domain/models.json)
        r"arn:\$\{AWS::Partition\}:bedrock:\$\{AWS::Region\}::foundation-model/amazon\.titan-embed-text-v2:0",
        r"arn:\$\{AWS::Partition\}:bedrock:\$\{AWS::Region\}::foundation-model/cohere\.embed-\*",
    ],
    "sagemaker": [
        r"arn:\$\{AWS::Partition\}:sagemaker:\$\{AWS::Region\}:\$\{AWS::AccountId\}:endpoint/vector-ingestion-\*"
    ],
    "es": [  # the model indexes of an existing domain, named by ExistingOpenSearchDomainArn
        r"\$\{ExistingOpenSearchDomainArn\}/vectors-\*",
    ],
    "s3": [  # the buckets named by ImportBuckets (`Buckets`: its names joined into ARNs, split after)
        r"arn:\$\{AWS::Partition\}:s3:::\$\{Buckets\}(/\*)?",
    ],
    "events": [  # the bus named by EventBusName (the account's default bus by default)
        r"arn:\$\{AWS::Partition\}:events:\$\{AWS::Region\}:\$\{AWS::AccountId\}:event-bus/\$\{EventBusName\}",
    ],
}
# Actions AWS defines no resource type for, which only "Resource": "*" can grant.
UNSCOPED_ACTIONS = {
    "dynamodb:ListStreams",  # the stream event source's poller
    # Step Functions' log delivery (the state machines' Logging)
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# The resource types an action's service may name.
SERVICE_TYPES = {
    "dynamodb": {"AWS::DynamoDB::Table"},
    "sqs": {"AWS::SQS::Queue"},
    "states": {"AWS::Serverless::StateMachine"},
    "es": {"AWS::OpenSearchService::Domain"},
    "lambda": {"AWS::Serverless::Function"},  # the schedule's role invokes its function
    "logs": {"AWS::Logs::LogGroup"},  # a function writes to its own log group
}
PSEUDO = set(LOCAL_PSEUDO_PARAMETERS)
# Parameters are not resources: an ARN built from one must match an EXTERNAL pattern.
PARAMETERS = set(load_template()["Parameters"])
# The services whose roles these are: functions, state machines, the schedule. (API Gateway's
# logging role only carries AWS's managed policy for it.)
SERVICE_PRINCIPALS = {"lambda.amazonaws.com", "states.amazonaws.com", "scheduler.amazonaws.com"}


def _references(value: Any) -> set[str]:
    """Logical ids a policy resource refers to (parameters and pseudo parameters excluded)."""
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    ((fn, args),) = value.items()
    if fn == "Ref":
        return set() if args in PSEUDO | PARAMETERS else {args}
    if fn == "Fn::GetAtt":
        return {args[0]}
    if fn == "Fn::Sub":
        text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
        names = {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables) - PSEUDO - PARAMETERS
        return names | _references(list(variables.values()))
    if fn == "Fn::If":
        return _references(args[1:])
    if fn in ("Fn::Split", "Fn::Join"):  # a list built from a parameter: what its parts refer to
        return _references(args[1])
    raise AssertionError(f"intrinsic {fn} in a policy resource")


def _alternatives(value: Any) -> list[Any]:
    """Each value a resource can take: both branches of an Fn::If."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [*_alternatives(value["Fn::If"][1]), *_alternatives(value["Fn::If"][2])]
    return [value]


def _statement_alternatives(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """The statement, or the one a conditional statement (Fn::If ... AWS::NoValue) adds."""
    if "Fn::If" in statement:
        _, present, absent = statement["Fn::If"]
        assert absent == {"Ref": "AWS::NoValue"}, statement
        return [present]
    return [statement]


def _policy_text(value: Any) -> str:
    """The ARN text of an external resource, as written: inside Fn::Sub, inside Fn::Split."""
    if isinstance(value, dict) and "Fn::Split" in value:
        value = value["Fn::Split"][1]
    if isinstance(value, dict):
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    return str(value)


def _service_role(resource: dict[str, Any]) -> bool:
    trusted = {
        principal
        for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for principal in _as_list(statement["Principal"].get("Service", []))
    }
    return bool(trusted & SERVICE_PRINCIPALS)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements() -> list[tuple[str, dict[str, Any]]]:
    """Every statement of the functions', state machines' and schedule's roles: their inline
    policies and the AWS::IAM::Policy resources attached to them."""
    template = Template(load_template(), {}, LOCAL_PSEUDO_PARAMETERS)
    permissions = Permissions(template)
    resources = permissions.cloudformation["Resources"]
    out = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role" or not _service_role(resource):
            continue
        for arn in template.resolve(resource["Properties"].get("ManagedPolicyArns", [])):
            assert arn in AWS_MANAGED_POLICIES, f"{logical_id}: {arn}"
        for policy in resource["Properties"].get("Policies", []):
            out.extend(
                (logical_id, s) for raw in policy["PolicyDocument"]["Statement"] for s in _statement_alternatives(raw)
            )
        for policy_id, policy in resources.items():
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": logical_id} in policy["Properties"]["Roles"]:
                out.extend(
                    (f"{logical_id}/{policy_id}", s) for s in policy["Properties"]["PolicyDocument"]["Statement"]
                )
    return out


STATEMENTS = _statements()


@pytest.mark.parametrize(("role", "statement"), STATEMENTS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(STATEMENTS)])
def test_every_policy_resource_is_declared_here_or_an_external_arn_the_code_needs(
    role: str, statement: dict[str, Any]
) -> None:
    declared = load_template()["Resources"]
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    services = {a.split(":", 1)[0] for a in actions}
    assert len(services) == 1, f"{role}: one service per statement keeps scoping readable: {actions}"
    (service,) = services
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    for resource in resources:
        for value in _alternatives(resource):
            if value == "*":
                assert set(actions) <= UNSCOPED_ACTIONS, f"{role}: {actions} on every resource"
                continue
            referenced = _references(value)
            if referenced:
                for logical_id in referenced:
                    assert logical_id in declared, f"{role}: {actions} on {value}: {logical_id} is not declared"
                    assert declared[logical_id]["Type"] in SERVICE_TYPES.get(service, set()), (
                        f"{role}: {actions} on {logical_id}, a {declared[logical_id]['Type']}"
                    )
            else:
                text = _policy_text(value)
                assert any(re.fullmatch(p, text) for p in EXTERNAL.get(service, [])), (
                    f"{role}: {actions} on {text}, neither declared in the template nor a known external ARN"
                )
