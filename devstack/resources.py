"""Creating template.yaml's tables and queues through the service APIs (moto or LocalStack)."""

from __future__ import annotations

import json
from typing import Any

from devstack.permissions import Permissions
from devstack.template import Template

_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode")
# Emulated elsewhere (OpenSearch by osmem via the ExistingOpenSearchEndpoint parameter, functions
# in their containers, API Gateway by the local front) or meaningless locally (layers).
_NOT_CREATED = {
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::Serverless::LayerVersion",
}


def _create_table(
    template: Template, session: Any, logical_id: str, props: dict[str, Any], permissions: Permissions | None
) -> dict[str, str]:
    client = session.client("dynamodb")
    name = f"{template.values['AWS::StackName']}-{logical_id}"
    client.create_table(TableName=name, **{k: template.resolve(props[k]) for k in _TABLE_KEYS if k in props})
    client.get_waiter("table_exists").wait(TableName=name)
    arn = client.describe_table(TableName=name)["Table"]["TableArn"]
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
}


def create_resources(
    template: Template, session: Any, only: set[str] | None = None, permissions: Permissions | None = None
) -> None:
    """Create every supported resource (or those of the types in `only`), each after the ones it
    references; fill template.physical. `permissions`: enforce the state machines' roles."""
    pending = {
        logical_id: resource
        for logical_id, resource in template.resources.items()
        if resource["Type"] not in _NOT_CREATED
        and resource["Type"] != "AWS::OpenSearchService::Domain"
        and (only is None or resource["Type"] in only)
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
