"""Creating template.yaml's resources through the service APIs (moto or LocalStack).

Every resource type of the template is either created here or skipped for a stated reason
(`_NOT_CREATED`); any other type fails loudly, so a new kind of resource cannot be silently
left out of the local stack.
"""

from __future__ import annotations

import json
from typing import Any

from devstack.permissions import Permissions
from devstack.template import Template

_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
    "DeletionProtectionEnabled",
)
# Each type the local stack does not create, and why.
_NOT_CREATED = {
    "AWS::Serverless::Function": "runs in a container process of its own (devstack.lambda_runtime)",
    "AWS::Serverless::Api": "served by the local front (devstack.api_gateway)",
    "AWS::Serverless::LayerVersion": "the functions import the venv's packages",
    "AWS::OpenSearchService::Domain": "osmem stands in for it, as an existing domain (ExistingOpenSearchEndpoint)",
    "AWS::IAM::Role": "enforced on every call by devstack.permissions, from the translated template",
    "AWS::IAM::Policy": "enforced with the role it is attached to (devstack.permissions)",
    "AWS::ApiGateway::Account": "the local front writes no access or execution logs to CloudWatch",
    "AWS::Logs::ResourcePolicy": "only the created OpenSearch domain writes with it",
    "AWS::CloudWatch::Alarm": "no CloudWatch metrics locally (the functions' EMF goes to their logs)",
    "AWS::CloudWatch::Dashboard": "no CloudWatch metrics locally",
}


def _create_table(
    template: Template, session: Any, logical_id: str, props: dict[str, Any], permissions: Permissions | None
) -> dict[str, str]:
    client = session.client("dynamodb")
    name = f"{template.values['AWS::StackName']}-{logical_id}"
    arguments = {k: template.resolve(props[k]) for k in _TABLE_KEYS if k in props}
    if "StreamSpecification" in arguments:  # CloudFormation's form has no StreamEnabled; the API's does
        arguments["StreamSpecification"] = {"StreamEnabled": True, **arguments["StreamSpecification"]}
    client.create_table(TableName=name, **arguments)
    client.get_waiter("table_exists").wait(TableName=name)
    if "TimeToLiveSpecification" in props:
        # Kept for fidelity; neither moto nor DynamoDB Local deletes expired items on time.
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification=template.resolve(props["TimeToLiveSpecification"])
        )
    table = client.describe_table(TableName=name)["Table"]
    attributes = {"Ref": name, "Arn": table["TableArn"]}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    return attributes


def _create_log_group(
    template: Template, session: Any, logical_id: str, props: dict[str, Any], permissions: Permissions | None
) -> dict[str, str]:
    """Created for its ARN, which roles and state machines name; nothing writes to it locally
    (the functions' logs go to the terminal)."""
    client = session.client("logs")
    name = template.resolve(props.get("LogGroupName")) or f"/{template.values['AWS::StackName']}/{logical_id}"
    client.create_log_group(logGroupName=name)
    if "RetentionInDays" in props:
        client.put_retention_policy(logGroupName=name, retentionInDays=int(template.resolve(props["RetentionInDays"])))
    arn = f"arn:aws:logs:{template.values['AWS::Region']}:{template.values['AWS::AccountId']}:log-group:{name}:*"
    return {"Ref": name, "Arn": arn}


def _create_queue(
    template: Template, session: Any, logical_id: str, props: dict[str, Any], permissions: Permissions | None
) -> dict[str, str]:
    client = session.client("sqs")
    name = f"{template.values['AWS::StackName']}-{logical_id}"
    attributes: dict[str, str] = {}
    for key, value in template.resolve(props).items():
        if key == "RedrivePolicy":
            attributes[key] = json.dumps(value)
        elif key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            attributes[key] = str(value)
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def _create_state_machine(
    template: Template, session: Any, logical_id: str, props: dict[str, Any], permissions: Permissions | None
) -> dict[str, str]:
    """The definition file with its DefinitionSubstitutions applied, as `sam deploy` does; with
    `permissions`, each Task its role may not perform fails as on AWS (Permissions.guard_definition)."""
    definition = (template.directory / props["DefinitionUri"]).read_text()
    for name, value in template.resolve(props.get("DefinitionSubstitutions", {})).items():
        definition = definition.replace("${" + name + "}", str(value))
    if permissions is not None:
        definition = permissions.guard_definition(logical_id, definition)
    name = f"{template.values['AWS::StackName']}-{logical_id}"
    arn = session.client("stepfunctions").create_state_machine(
        name=name,
        definition=definition,
        roleArn=f"arn:aws:iam::{template.values['AWS::AccountId']}:role/{logical_id}Role",
        type=props.get("Type", "STANDARD"),
    )["stateMachineArn"]
    return {"Ref": arn, "Arn": arn, "Name": name}


_CREATORS = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::SQS::Queue": _create_queue,
    "AWS::Serverless::StateMachine": _create_state_machine,
    "AWS::Logs::LogGroup": _create_log_group,
}


def create_resources(
    template: Template, session: Any, only: set[str] | None = None, permissions: Permissions | None = None
) -> None:
    """Create every supported resource (or those of the types in `only`), each after the ones it
    references; fill template.physical. `permissions`: enforce the state machines' roles."""
    pending = {
        logical_id: resource
        for logical_id, resource in template.resources.items()
        if resource["Type"] not in _NOT_CREATED and (only is None or resource["Type"] in only)
    }
    unsupported = {r["Type"] for r in pending.values()} - set(_CREATORS)
    if unsupported:
        raise ValueError(f"the local stack cannot create {sorted(unsupported)}")
    while pending:
        progressed = False
        for logical_id, resource in list(pending.items()):
            try:
                template.resolve(resource.get("Properties", {}))
            except ValueError:
                continue  # references a resource not created yet
            creator = _CREATORS[resource["Type"]]
            template.physical[logical_id] = creator(
                template, session, logical_id, resource.get("Properties", {}), permissions
            )
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise ValueError(f"cannot order the creation of {sorted(pending)}: unresolved references")


def create_import_buckets(template: Template, session: Any) -> list[str]:
    """The buckets the template's ImportBuckets parameter names, created empty: on AWS they are
    the callers' own; locally the walk-through and the tests put their objects there."""
    names = [n.strip() for n in str(template.values.get("ImportBuckets", "")).split(",") if n.strip()]
    client = session.client("s3")
    for name in names:
        client.create_bucket(Bucket=name)
    return names
