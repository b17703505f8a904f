"""Reading template.yaml: CloudFormation short-form tags, intrinsic functions, SAM globals.

Only what this project's template uses is supported; anything else fails loudly, so a new
construct in the template cannot be silently mis-emulated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
LOCAL_PSEUDO_PARAMETERS = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "vector-ingestion-local",
}
# osmem stands in for an existing domain, which the template names by endpoint and ARN.
LOCAL_OPENSEARCH_DOMAIN_ARN = f"arn:aws:es:{LOCAL_REGION}:{LOCAL_ACCOUNT}:domain/local-osmem"


_NO_VALUE = object()  # what Ref AWS::NoValue resolves to, until its container drops it

# The bucket the local stack creates in moto and names in ImportBuckets (README, "Import from S3").
LOCAL_IMPORT_BUCKET = "vector-imports"


def local_import_parameters(bucket: str = LOCAL_IMPORT_BUCKET) -> dict[str, str]:
    return {"ImportBuckets": bucket}


def local_opensearch_parameters(endpoint: str, domain_arn: str = LOCAL_OPENSEARCH_DOMAIN_ARN) -> dict[str, str]:
    """The template parameters of a local stack whose OpenSearch is `endpoint` (no SigV4)."""
    return {"ExistingOpenSearchEndpoint": endpoint, "ExistingOpenSearchDomainArn": domain_arn, "OpenSearchAuth": "none"}


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return document


@dataclass
class SqsEventSource:
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None = None  # ScalingConfig: batches in flight at once


@dataclass
class StreamEventSource:
    """A DynamoDB stream event source mapping (SAM `DynamoDB`), as the local poller runs it."""

    table_logical_id: str
    batch_size: int
    starting_position: str  # TRIM_HORIZON or LATEST
    report_batch_item_failures: bool
    bisect_on_error: bool
    max_retry_attempts: int  # -1: until the record expires
    on_failure_queue_logical_id: str | None
    filter_patterns: list[dict[str, Any]]  # FilterCriteria, each an EventBridge pattern


@dataclass
class ScheduleSource:
    """An EventBridge Scheduler schedule (SAM `ScheduleV2`) that invokes the function."""

    expression: str  # as written, intrinsics unresolved; see Template.resolve
    input: str


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str
    timeout: int
    memory_size: int
    # As written in the template (intrinsics unresolved): see Template.shared_environment.
    environment: dict[str, Any]
    routes: list[tuple[str, str]] = field(default_factory=list)  # (METHOD, /path)
    sqs_sources: list[SqsEventSource] = field(default_factory=list)
    stream_sources: list[StreamEventSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)


class Template:
    """A template with parameter values; resolves intrinsics against `physical` resource attributes."""

    def __init__(
        self,
        document: dict[str, Any],
        parameters: dict[str, str],
        pseudo: dict[str, str],
        directory: Path = TEMPLATE_PATH.parent,
    ) -> None:
        self.document = document
        self.directory = directory  # relative paths in the template (DefinitionUri) start here
        self.values: dict[str, Any] = dict(pseudo)
        for name, spec in document.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            # A CommaDelimitedList is a list to Ref, as in CloudFormation ("" is [""]).
            self.values[name] = str(value).split(",") if spec.get("Type") == "CommaDelimitedList" else value
        unknown = set(parameters) - set(document.get("Parameters", {}))
        if unknown:
            raise ValueError(f"template has no parameters {sorted(unknown)}")
        # logical id -> {"Ref": ..., attribute: ...}, filled in as resources are created
        self.physical: dict[str, dict[str, str]] = {}
        self.conditions = {name: self._truth(expr) for name, expr in document.get("Conditions", {}).items()}
        self._check_rules()

    def _check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them before creating anything: a
        parameter set one of them refuses fails here too."""
        for name, rule in self.document.get("Rules", {}).items():
            if "RuleCondition" in rule and not self._truth(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self._truth(assertion["Assert"]):
                    raise ValueError(f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources whose condition holds."""
        return {
            logical_id: resource
            for logical_id, resource in self.document["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def _truth(self, expr: dict[str, Any]) -> bool:
        ((fn, args),) = expr.items()
        if fn == "Fn::Equals":
            return bool(self.resolve(args[0]) == self.resolve(args[1]))
        if fn == "Fn::Not":
            return not self._truth(args[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in args)
        if fn == "Condition":
            return bool(self.conditions[args])
        raise ValueError(f"condition function {fn} is not supported locally")

    def resolve(self, value: Any) -> Any:
        """`value` with its intrinsics evaluated; an element or key that is AWS::NoValue is left
        out, as CloudFormation leaves it out."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not _NO_VALUE}
        ((fn, args),) = value.items()
        if fn == "Ref" and args == "AWS::NoValue":
            return _NO_VALUE
        if fn == "Ref":
            if args in self.values:
                return self.values[args]
            return self._attribute(args, "Ref")
        if fn == "Fn::GetAtt":
            logical_id, attribute = args
            return self._attribute(logical_id, attribute)
        if fn == "Fn::If":
            name, when_true, when_false = args
            return self.resolve(when_true if self.conditions[name] else when_false)
        if fn == "Fn::Sub":
            return self._sub(args)
        if fn == "Fn::Join":
            separator, values = args
            return separator.join(str(v) for v in self.resolve(values))
        if fn == "Fn::Split":
            separator, text = args
            return str(self.resolve(text)).split(separator)
        if fn == "Fn::Select":
            index, values = args
            return self.resolve(values)[int(index)]
        raise ValueError(f"intrinsic {fn} is not supported locally")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        try:
            return self.physical[logical_id][attribute]
        except KeyError:
            raise ValueError(f"{logical_id}.{attribute} is not available locally") from None

    def _sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
        out, rest = "", text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out += before
            if name in variables:
                out += str(self.resolve(variables[name]))
            elif "." in name:
                out += self._attribute(*name.split(".", 1))
            else:
                out += str(self.resolve({"Ref": name}))
        return out + rest

    def function_environment(self, spec: FunctionSpec) -> dict[str, str]:
        """A function's variables, resolved against the created resources."""
        return {key: str(self.resolve(raw)) for key, raw in spec.environment.items()}

    def shared_environment(self) -> dict[str, str]:
        """The union of every function's variables, for the integration tier, which runs every
        function in the test process (the local stack gives each its own); they must agree there
        (the template declares them in Globals)."""
        merged: dict[str, str] = {}
        for spec in self.functions():
            for key, value in self.function_environment(spec).items():
                if merged.setdefault(key, value) != value:
                    raise ValueError(f"functions disagree on {key}; the integration tier runs them in one process")
        return merged

    def functions(self) -> list[FunctionSpec]:
        function_globals = self.document.get("Globals", {}).get("Function", {})
        specs = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            props = {**function_globals, **resource["Properties"]}
            variables = {
                **function_globals.get("Environment", {}).get("Variables", {}),
                **resource["Properties"].get("Environment", {}).get("Variables", {}),
            }
            spec = FunctionSpec(
                logical_id=logical_id,
                handler=props["Handler"],
                timeout=int(props.get("Timeout", 3)),
                memory_size=int(props.get("MemorySize", 128)),
                environment=variables,
            )
            for event in props.get("Events", {}).values():
                event_props = event["Properties"]
                if event["Type"] == "Api":
                    spec.routes.append((event_props["Method"].upper(), event_props["Path"]))
                elif event["Type"] == "SQS":
                    queue_arn = event_props["Queue"]
                    spec.sqs_sources.append(
                        SqsEventSource(
                            queue_logical_id=queue_arn["Fn::GetAtt"][0],
                            batch_size=int(event_props.get("BatchSize", 10)),
                            report_batch_item_failures="ReportBatchItemFailures"
                            in event_props.get("FunctionResponseTypes", []),
                            maximum_concurrency=self._maximum_concurrency(event_props),
                        )
                    )
                elif event["Type"] == "DynamoDB":
                    spec.stream_sources.append(self._stream_source(logical_id, event_props))
                elif event["Type"] == "ScheduleV2":
                    expression = self.resolve(event_props["ScheduleExpression"])
                    spec.schedules.append(ScheduleSource(expression, event_props.get("Input", "{}")))
                else:
                    raise ValueError(f"{logical_id}: event type {event['Type']} is not supported locally")
            specs.append(spec)
        return specs

    def _maximum_concurrency(self, props: dict[str, Any]) -> int | None:
        value = props.get("ScalingConfig", {}).get("MaximumConcurrency")
        return None if value is None else int(self.resolve(value))

    def _stream_source(self, logical_id: str, props: dict[str, Any]) -> StreamEventSource:
        known = {
            "Stream",
            "StartingPosition",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "BisectBatchOnFunctionError",
            "MaximumRetryAttempts",
            "DestinationConfig",
            "FilterCriteria",
        }
        unknown = set(props) - known
        if unknown:
            raise ValueError(f"{logical_id}: DynamoDB event properties {sorted(unknown)} are not supported locally")
        table, attribute = props["Stream"]["Fn::GetAtt"]
        if attribute != "StreamArn":
            raise ValueError(f"{logical_id}: a stream must be a table's StreamArn")
        on_failure = props.get("DestinationConfig", {}).get("OnFailure")
        if on_failure is not None and on_failure.get("Type") != "SQS":
            raise ValueError(f"{logical_id}: only an SQS OnFailure destination is supported locally")
        return StreamEventSource(
            table_logical_id=table,
            batch_size=int(props.get("BatchSize", 100)),
            starting_position=props["StartingPosition"],
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            on_failure_queue_logical_id=on_failure["Destination"]["Fn::GetAtt"][0] if on_failure else None,
            filter_patterns=[json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])],
        )
