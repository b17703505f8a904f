"""template.yaml: linted, valid SAM, builds, imports, and agrees with the code, events and OpenAPI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.template import LOCAL_PSEUDO_PARAMETERS, Template, load_template
from tests.support.events import event_names, load_event
from vector_tasks.handlers import openapi, read_api, submit_api

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".venv-tools" / "bin"
needs_tools = pytest.mark.skipif(
    not (TOOLS / "sam").exists(), reason="SAM CLI and cfn-lint live in .venv-tools: run `make tools` (make test does)"
)


def _python312() -> str | None:
    found = (
        subprocess.run(["pyenv", "prefix", "3.12"], capture_output=True, text=True, check=False)
        if shutil.which("pyenv")
        else None
    )
    if found is not None and found.returncode == 0:
        return str(Path(found.stdout.strip()) / "bin" / "python3.12")
    return shutil.which("python3.12")


def _sam_env() -> dict[str, str]:
    python = _python312()
    path = f"{Path(python).parent}:{os.environ['PATH']}" if python else os.environ["PATH"]
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "dummy",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "PATH": path,
    }


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=_sam_env(), capture_output=True, text=True, timeout=600, check=False)


@needs_tools
def test_cfn_lint_passes() -> None:
    result = _run(str(TOOLS / "cfn-lint"), "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_tools
def test_sam_validate_lint_passes() -> None:
    result = _run(str(TOOLS / "sam"), "validate", "--lint", "--template", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_tools
@pytest.mark.skipif(_python312() is None, reason="sam build for python3.12 needs a python3.12 (pyenv has one)")
def test_sam_build_produces_packages_whose_handlers_import(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = _run(str(TOOLS / "sam"), "build", "--template", "template.yaml", "--build-dir", str(build))
    assert result.returncode == 0, result.stdout + result.stderr
    template = Template(load_template(), {}, LOCAL_PSEUDO_PARAMETERS)
    for spec in template.functions():
        module = spec.handler.rsplit(".", 1)[0]
        python_path = f"{build / spec.logical_id}:{build / 'DependenciesLayer' / 'python'}"
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": python_path, "PYTHONNOUSERSITE": "1"}
        # The Lambda runtime brings boto3; the build venv's boto3 stands in for it here.
        check = subprocess.run(
            [str(_python312()), "-S", "-c", f"import sys; sys.path.append('{_boto3_dir()}'); import {module}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert check.returncode == 0, f"{spec.logical_id}: {check.stderr}"


def _boto3_dir() -> str:
    import boto3

    return str(Path(boto3.__file__).parent.parent)


def _template() -> Template:
    return Template(load_template(), {}, LOCAL_PSEUDO_PARAMETERS)


def test_every_route_of_the_code_is_an_explicit_api_event_of_its_function() -> None:
    functions = {spec.handler: set(spec.routes) for spec in _template().functions()}
    for module in (submit_api, read_api):
        declared = functions[f"{module.__name__}.lambda_handler"]
        served = json.loads(module.app.get_openapi_json_schema())["paths"]
        assert declared == {(method.upper(), path) for path, ops in served.items() for method in ops}
    all_paths = [path for routes in functions.values() for _, path in routes]
    assert not any("{proxy+}" in p for p in all_paths)


def test_every_function_has_an_event_that_fits_it() -> None:
    template = _template()
    covered: set[str] = set()
    for name in event_names():
        event = load_event(name)
        for spec in template.functions():
            if "httpMethod" in event and (event["httpMethod"], event["path"]) in spec.routes:
                covered.add(spec.logical_id)
            if "Records" in event and event["Records"][0]["eventSource"] == "aws:sqs":
                queue = event["Records"][0]["eventSourceARN"].rsplit(":", 1)[-1]
                if any(queue.endswith(f"-{s.queue_logical_id}") for s in spec.sqs_sources):
                    covered.add(spec.logical_id)
            if "Records" in event and event["Records"][0]["eventSource"] == "aws:dynamodb":
                table = event["Records"][0]["eventSourceARN"].split(":table/", 1)[1].split("/stream/", 1)[0]
                if any(table.endswith(f"-{s.table_logical_id}") for s in spec.stream_sources):
                    covered.add(spec.logical_id)
            if any(event == json.loads(s.input) for s in spec.schedules):
                covered.add(spec.logical_id)
    assert covered == {spec.logical_id for spec in template.functions()}


def test_committed_openapi_document_matches_the_code() -> None:
    committed = (REPO / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(openapi.document()), "openapi.json is stale: run `make openapi`"


def test_openapi_names_operations_as_the_spec_does() -> None:
    document: dict[str, Any] = json.loads(openapi.document())
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {
        "create_upsertion_task",
        "get_upsertion_task",
        "list_upsertion_tasks",
        "create_deletion_task",
        "get_deletion_task",
        "list_deletion_tasks",
    } <= operations


# -- what production on AWS needs (README, "Deploying with SAM" and "Operating it") -----------

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
needs_checkov = pytest.mark.skipif(
    not CHECKOV.exists(), reason="checkov lives in .venv-checkov: run `make checkov` (make test creates it)"
)


@needs_checkov
def test_checkov_finds_nothing_and_every_suppression_says_why() -> None:
    """Offline (--skip-download: no guidelines fetched), every check of the pinned version."""
    result = _run(
        str(CHECKOV), "-f", "template.yaml", "--framework", "cloudformation", "--skip-download", "--compact", "--quiet"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout, result.stdout
    for logical_id, resource in load_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV") and len(skip.get("comment", "")) > 40, (logical_id, skip)


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in load_template()["Resources"].items() if v["Type"] == kind}


def test_every_function_and_state_machine_logs_to_a_group_kept_for_the_retention_parameter() -> None:
    groups = _resources("AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    for logical_id in _resources("AWS::Serverless::Function"):
        assert _resources("AWS::Serverless::Function")[logical_id]["Properties"]["LoggingConfig"] == {
            "LogGroup": {"Ref": f"{logical_id}LogGroup"}
        }
        assert f"{logical_id}LogGroup" in groups
    for logical_id, machine in _resources("AWS::Serverless::StateMachine").items():
        (destination,) = machine["Properties"]["Logging"]["Destinations"]
        assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": [f"{logical_id}LogGroup", "Arn"]}
        assert machine["Properties"]["Logging"]["IncludeExecutionData"] is False  # no task data in logs
    assert load_template()["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_the_api_logs_each_request_as_json_with_the_callers_arn() -> None:
    api = _resources("AWS::Serverless::Api")["TasksApi"]["Properties"]
    access = api["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    line = json.loads(access["Format"])
    assert {
        line["callerArn"],
        line["requestId"],
        line["status"],
        line["responseLatency"],
    } == {"$context.identity.userArn", "$context.requestId", "$context.status", "$context.responseLatency"}


ALARMED = {
    # alarm: (namespace, metric) — or the metric math's metric for ChunksGivenUp
    "DeadLetterQueueNotEmptyAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    "ChunksGivenUpAlarm": ("VectorIngestion", "ChunksGivenUp"),
    "WorkQueueBacklogAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    "WorkerErrorsAlarm": ("AWS/Lambda", "Errors"),
    "WorkerThrottlesAlarm": ("AWS/Lambda", "Throttles"),
    "ImportDeadLetterQueueNotEmptyAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    "ImportSplitterErrorsAlarm": ("AWS/Lambda", "Errors"),
    "ApiServerErrorRateAlarm": ("AWS/ApiGateway", "5XXError"),
    "ApiLatencyAlarm": ("AWS/ApiGateway", "Latency"),
    "CancelTaskFailuresAlarm": ("AWS/States", "ExecutionsFailed"),
    "RestartTaskFailuresAlarm": ("AWS/States", "ExecutionsFailed"),
    "CompletionEventsFailedAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    "CompletionEventsLagAlarm": ("AWS/Lambda", "IteratorAge"),
    "OpenSearchClusterRedAlarm": ("AWS/ES", "ClusterStatus.red"),
    "OpenSearchLowStorageAlarm": ("AWS/ES", "FreeStorageSpace"),
    "OpenSearchJvmPressureAlarm": ("AWS/ES", "JVMMemoryPressure"),
}


def test_the_alarms_watch_what_the_issue_lists_and_notify_the_optional_topic() -> None:
    alarms = _resources("AWS::CloudWatch::Alarm")
    assert set(alarms) == set(ALARMED)
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        if "Metrics" in props:
            watched = {
                (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
                for m in props["Metrics"]
                if "MetricStat" in m
            }
            assert watched == {ALARMED[logical_id]}, logical_id
        else:
            assert (props["Namespace"], props["MetricName"]) == ALARMED[logical_id], logical_id
        topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        assert props["AlarmActions"] == props["OKActions"] == topic, logical_id
        if props.get("Namespace") == "AWS/ES":
            assert alarm["Condition"] == "CreateOpenSearchDomain"  # the service's own domain only
    # p99, not the average, of the API's latency
    assert alarms["ApiLatencyAlarm"]["Properties"]["ExtendedStatistic"] == "p99"


def test_refused_transitions_end_their_executions_successfully() -> None:
    """So the ExecutionsFailed alarms fire on real failures only."""
    for name in ("cancel_task", "restart_task"):
        states = json.loads((REPO / "statemachines" / f"{name}.asl.json").read_text())["States"]
        assert states["Refused"]["Type"] == "Pass" and states["Refused"]["Result"]["refused"] is True
        assert not [s for s in states.values() if s["Type"] == "Fail"]


def test_the_dashboard_is_valid_json_showing_every_published_metric() -> None:
    from vector_tasks import observability

    template = Template(load_template(), {}, LOCAL_PSEUDO_PARAMETERS)
    body, variables = _resources("AWS::CloudWatch::Dashboard")["ServiceDashboard"]["Properties"]["DashboardBody"][
        "Fn::Sub"
    ]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    stand_ins = dict.fromkeys(names, "x")
    dashboard = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: stand_ins[m.group(1)], body))
    assert len(dashboard["widgets"]) >= 8
    assert set(variables) <= names
    published = {
        observability.ITEMS_SUCCEEDED,
        observability.ITEMS_FAILED,
        observability.ITEMS_SUPERSEDED,
        observability.CHUNK_PROCESSING_TIME,
        observability.EMBEDDING_LATENCY,
        observability.BULK_RETRIES,
        observability.CHUNKS_GIVEN_UP,
        observability.TASKS_FINISHED,
    }
    for metric in published:
        assert f'MetricName=\\"{metric}\\"' in body, metric
    assert template.values["Stage"] == "dev"


def test_chunks_results_and_final_tasks_expire_through_ttl_on_the_attribute_the_store_writes() -> None:
    from vector_tasks.adapters.task_codec import EXPIRES_AT

    table = _resources("AWS::DynamoDB::Table")["TaskTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": EXPIRES_AT, "Enabled": True}
    assert table["DeletionProtectionEnabled"] is True
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    parameters = load_template()["Parameters"]
    assert (parameters["RetentionDays"]["Default"], parameters["TaskRetentionDays"]["Default"]) == (30, 365)
    # Longer than the work queue keeps a message: no queued chunk outlives its items.
    queue_days = _resources("AWS::SQS::Queue")["WorkQueue"]["Properties"]["MessageRetentionPeriod"] / 86400
    assert parameters["RetentionDays"]["MinValue"] > queue_days


def _translated() -> dict[str, Any]:
    from devstack.permissions import transform

    return transform(_template())["Resources"]


def test_the_api_is_regional_or_private_and_its_resource_policy_names_the_callers() -> None:
    resources = _translated()
    rest_api = resources["TasksApi"]["Properties"]
    assert rest_api["EndpointConfiguration"]["Types"] == [{"Fn::If": ["PrivateApi", "PRIVATE", "REGIONAL"]}]
    policy = rest_api["Body"]["x-amazon-apigateway-policy"]["Statement"]
    allow = policy[0]
    assert allow["Effect"] == "Allow" and allow["Principal"]["AWS"]["Fn::If"][0] == "AnyCallerOfAccount"
    callers = policy[1]["Fn::If"]
    assert callers[1]["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
    # SAM inlines the parameter's value when it transforms (here its default); !Split runs on deploy.
    assert callers[2]["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": {"Fn::Split": [",", ""]}}}
    private = policy[2]["Fn::If"]
    assert private[0] == "PrivateApi"
    assert private[1]["Effect"] == "Deny"
    assert private[1]["Condition"] == {"StringNotEquals": {"aws:SourceVpce": ""}}


def test_the_domain_trusts_the_worker_and_the_admin_only_and_refuses_explicit_indexes() -> None:
    domain = _resources("AWS::OpenSearchService::Domain")["VectorDomain"]["Properties"]
    assert domain["AdvancedOptions"]["rest.action.multi.allow_explicit_index"] == "false"
    (statement,) = domain["AccessPolicies"]["Statement"]
    assert statement["Principal"]["AWS"] == {
        "Fn::If": [
            "HasOpenSearchAdmin",
            [{"Fn::GetAtt": ["TaskWorkerRole", "Arn"]}, {"Ref": "OpenSearchAdminRoleArn"}],
            [{"Fn::GetAtt": ["TaskWorkerRole", "Arn"]}],
        ]
    }
    assert set(domain["LogPublishingOptions"]) >= {"ES_APPLICATION_LOGS", "AUDIT_LOGS"}
    assert domain["AdvancedSecurityOptions"]["Enabled"] is True  # audit logs need it
    (es,) = _resources("AWS::IAM::Policy")["TaskWorkerOpenSearchPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert es["Resource"] == {
        "Fn::If": [
            "CreateOpenSearchDomain",
            {"Fn::Sub": "${VectorDomain.Arn}/vectors-*"},
            {"Fn::Sub": "${ExistingOpenSearchDomainArn}/vectors-*"},
        ]
    }


def test_no_role_gets_a_managed_policy_for_every_queue_or_stream() -> None:
    """SAM attaches AWSLambdaSQSQueueExecutionRole / AWSLambdaDynamoDBExecutionRole to the roles it
    generates for queue and stream consumers; those consumers have roles of their own instead."""
    template = _template()
    for logical_id, resource in _translated().items():
        if resource["Type"] == "AWS::IAM::Role":
            arns = template.resolve(resource["Properties"].get("ManagedPolicyArns", []))
            assert not [a for a in arns if "SQSQueueExecution" in a or "DynamoDBExecution" in a], logical_id
