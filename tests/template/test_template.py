"""template.yaml is the single source of truth: check it is valid, least-privilege and buildable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tollbooth_local.template import REPO_ROOT, Template

TEMPLATE = Template()
BIN = Path(sys.executable).parent
SAM_ENV = {
    **os.environ,
    "SAM_CLI_TELEMETRY": "0",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PATH": f"{BIN}:{os.environ['PATH']}",
}
# An account's slices are read with it in one BatchGetItem.
READ = {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"}
# A transaction puts, updates and deletes (a lot leaves the table with its last credit, and an
# intent when its draws are done); IAM checks each action a transaction holds.
WRITE = READ | {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
RESTORED = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${RestoredTableName}"
# LedgerTable, or the table restored from its point-in-time recovery (RestoredTableName)
TABLE = {"Fn::If": ["UseRestoredTable", {"Fn::Sub": RESTORED}, {"Fn::GetAtt": ["LedgerTable", "Arn"]}]}
EXPIRY_INDEX = {
    "Fn::If": [
        "UseRestoredTable",
        {"Fn::Sub": RESTORED + "/index/ExpiryIndex"},
        {"Fn::Sub": "${LedgerTable.Arn}/index/ExpiryIndex"},
    ]
}
BUS = {"Fn::GetAtt": ["EventBus", "Arn"]}
# Per function: each resource it may touch (as written in the template) and the actions allowed there.
EXPECTED_GRANTS: dict[str, list[tuple[dict, set[str]]]] = {
    "CatalogFunction": [],
    "AccountFunction": [(TABLE, READ)],
    # A change's events are published right after it (the sweep publishes what is left).
    "PurchaseFunction": [(TABLE, WRITE), (BUS, {"events:PutEvents"})],
    "GrantFunction": [(TABLE, WRITE), (BUS, {"events:PutEvents"})],
    "ConsumeFunction": [(TABLE, WRITE), (BUS, {"events:PutEvents"})],
    "ExpiryFunction": [
        (EXPIRY_INDEX, {"dynamodb:Query"}),
        (TABLE, WRITE),  # an account due in full is loaded (Query, BatchGetItem) and written
        (BUS, {"events:PutEvents"}),
    ],
    "UsageFunction": [
        (TABLE, WRITE),
        (
            {"Fn::GetAtt": ["UsageQueue", "Arn"]},
            {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"},
        ),
        ({"Fn::GetAtt": ["UsageDeadLetterQueue", "Arn"]}, {"sqs:SendMessage"}),
        (BUS, {"events:PutEvents"}),
    ],
}
EXPECTED_ACTIONS = EXPECTED_GRANTS
CONTRACT = {
    ("GET", "/v1/catalog", "PublicApi", "none"),
    ("GET", "/v1/openapi.json", "PublicApi", "none"),
    ("GET", "/docs", "PublicApi", "none"),
    ("POST", "/v1/quotes", "PublicApi", "jwt"),
    ("POST", "/v1/quotes", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/purchases", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/refunds", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/disputes", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/adjustments", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/holds", "PublicApi", "jwt"),
    ("POST", "/v1/accounts/{account_id}/holds", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/holds/{hold_id}/capture", "PublicApi", "jwt"),
    ("POST", "/v1/accounts/{account_id}/holds/{hold_id}/capture", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/holds/{hold_id}/release", "PublicApi", "jwt"),
    ("POST", "/v1/accounts/{account_id}/holds/{hold_id}/release", "ServiceApi", "iam"),
    ("GET", "/v1/accounts/{account_id}/holds", "PublicApi", "jwt"),
    ("GET", "/v1/accounts/{account_id}/holds", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/reversals", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/lots/{lot_id}/void", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/grants", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/allowances", "ServiceApi", "iam"),
    ("POST", "/v1/accounts/{account_id}/consume", "PublicApi", "jwt"),
    ("POST", "/v1/accounts/{account_id}/consume", "ServiceApi", "iam"),
    ("GET", "/v1/accounts/{account_id}/balance", "PublicApi", "jwt"),
    ("GET", "/v1/accounts/{account_id}/balance", "ServiceApi", "iam"),
    ("GET", "/v1/accounts/{account_id}/ledger", "PublicApi", "jwt"),
    ("GET", "/v1/accounts/{account_id}/ledger", "ServiceApi", "iam"),
}


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, env=SAM_ENV, capture_output=True, text=True, timeout=600)


def test_sam_validate_lint_passes() -> None:
    result = run(str(BIN / "sam"), "validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes() -> None:
    result = run(str(BIN / "cfn-lint"), "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_routes_and_their_authorization_are_the_contract() -> None:
    routes = {(r.method, r.path, r.api_id, r.auth) for r in TEMPLATE.routes()}
    assert routes == CONTRACT


def statements(function_id: str) -> list[dict]:
    policies = TEMPLATE.resources[function_id]["Properties"].get("Policies", [])
    found = []
    for policy in policies:
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"{function_id}: only inline statements"
        found += policy["Statement"]
    return found


@pytest.mark.parametrize("function_id", sorted(EXPECTED_GRANTS))
def test_each_function_has_least_privilege_on_named_resources(function_id: str) -> None:
    granted: list[tuple[dict, set[str]]] = []
    for statement in statements(function_id):
        assert statement["Effect"] == "Allow"
        assert isinstance(statement["Resource"], dict), f"{function_id}: a named resource, never '*'"
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in action for action in listed), listed
        granted.append((statement["Resource"], set(listed)))
    assert granted == EXPECTED_GRANTS[function_id]


def test_expiry_runs_on_a_schedule_parameter_with_a_dead_letter_queue_and_no_ttl() -> None:
    sweep = TEMPLATE.resources["ExpiryFunction"]["Properties"]["Events"]["Sweep"]
    assert sweep["Type"] == "Schedule" and sweep["Properties"]["Schedule"] == {"Ref": "ExpirySchedule"}
    assert sweep["Properties"]["DeadLetterConfig"] == {"Type": "SQS"}
    assert TEMPLATE.document["Parameters"]["ExpirySchedule"]["Default"] == "rate(15 minutes)"
    table = TEMPLATE.resources["LedgerTable"]["Properties"]
    # TTL deletes days late and deletes history: expiry is the sweep's job, never TTL's
    assert "TimeToLiveSpecification" not in table
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "ExpiryIndex"
    assert [key["AttributeName"] for key in index["KeySchema"]] == ["expiry_shard", "next_due_at"]


@pytest.mark.parametrize("function_id", sorted(EXPECTED_ACTIONS))
def test_each_function_builds_with_make_and_logs_with_retention(function_id: str) -> None:
    resource = TEMPLATE.resources[function_id]
    assert resource["Metadata"]["BuildMethod"] == "makefile"
    code_uri = REPO_ROOT / resource["Properties"]["CodeUri"]
    assert f"build-{function_id}:" in (code_uri / "Makefile").read_text()
    log_groups = [
        spec["Properties"]
        for spec in TEMPLATE.resources_of("AWS::Logs::LogGroup").values()
        if spec["Properties"].get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"}
    ]
    assert len(log_groups) == 1 and log_groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_runtime_architecture_and_powertools_are_global() -> None:
    function_globals = TEMPLATE.document["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    env = function_globals["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "TABLE_NAME"} <= set(env)


def test_the_table_has_point_in_time_recovery_and_prod_deletion_protection() -> None:
    table = TEMPLATE.resources["LedgerTable"]
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}
    assert table["DeletionPolicy"] == "Retain"


def test_samconfig_has_dev_and_prod() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    assert "Stage=prod" in config["prod"]["deploy"]["parameters"]["parameter_overrides"]
    assert "Stage=dev" in config["dev"]["deploy"]["parameters"]["parameter_overrides"]


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


@pytest.mark.slow
def test_sam_build_makes_arm64_layers_without_docker(tmp_path: Path) -> None:
    # Given an x86 (or any) machine, When sam build runs the layers' Makefiles
    build_dir = tmp_path / "build"
    result = run(str(BIN / "sam"), "build", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    # Then every compiled module in the dependencies layer is aarch64 (EM_AARCH64 = 183)
    compiled = list((build_dir / "DependenciesLayer" / "python").rglob("*.so"))
    assert compiled, "expected compiled modules (pydantic-core) in the layer"
    assert {elf_machine(path) for path in compiled} == {183}
    assert any("cpython-313-aarch64" in path.name for path in compiled)
    # And the library layer and every function are in place
    assert (
        build_dir / "TollboothLayer" / "python" / "tollbooth" / "domain" / "catalog" / "versions" / "2026-11-01.toml"
    ).exists()
    for function_id in EXPECTED_ACTIONS:
        assert (build_dir / function_id / "app.py").exists()
    shutil.rmtree(build_dir)


def test_usage_flows_from_a_queue_with_partial_batch_responses_a_dlq_and_an_alarm() -> None:
    queue = TEMPLATE.resources["UsageQueue"]["Properties"]
    function = TEMPLATE.resources["UsageFunction"]["Properties"]
    # SQS must not redeliver a message while the function may still be working on it
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["UsageDeadLetterQueue", "Arn"]}
    # The consumer knows the queue's receive limit, so it can dead-letter with reasons on the last one
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "UsageMaxReceives"}
    assert function["Environment"]["Variables"]["USAGE_MAX_RECEIVES"] == {"Ref": "UsageMaxReceives"}
    assert int(TEMPLATE.parameter_defaults()["UsageMaxReceives"]) >= 2
    (mapping,) = TEMPLATE.event_source_mappings()
    assert mapping["FunctionId"] == "UsageFunction"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == {"Ref": "UsageBatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "UsageBatchWindowSeconds"}
    # No SAM SQS event: it would attach a managed policy on every queue in the account
    assert not any(e["Type"] == "SQS" for e in function.get("Events", {}).values())
    alarm = TEMPLATE.resources["UsageDeadLetterAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["UsageDeadLetterQueue", "QueueName"]}


# What the python runtime ships itself: a layer that carried them would shadow the runtime's.
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}


def test_every_function_runs_published_versions_with_snapstart_and_active_tracing() -> None:
    function_globals = TEMPLATE.document["Globals"]["Function"]
    # X-Ray: Lambda's own segment per invocation (tollbooth.tracing adds the subsegments)
    assert function_globals["Tracing"] == "Active"
    # SnapStart applies to published versions only, so every function publishes one behind an alias
    assert function_globals["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert function_globals["AutoPublishAlias"] == "live"
    for function_id in EXPECTED_GRANTS:
        props = TEMPLATE.resources[function_id]["Properties"]
        assert not {"SnapStart", "AutoPublishAlias", "Tracing"} & set(props), f"{function_id} opts out"
    # SAM points the functions' events at the alias; the SQS mapping, declared by hand, names it
    (mapping,) = TEMPLATE.resources_of("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == {"Ref": "UsageFunction.Alias"}


def test_the_dependencies_layer_pins_its_closure_without_the_runtimes_packages_or_the_xray_sdk() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    layer = REPO_ROOT / "layers" / "dependencies"
    lines = [line for line in (layer / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    pinned = {Requirement(line).name.lower(): Requirement(line) for line in lines}
    assert all(str(r.specifier).startswith("==") and not r.extras for r in pinned.values()), lines
    assert not (RUNTIME_PACKAGES | {"aws-xray-sdk", "wrapt"}) & set(pinned)
    # Installed with --no-deps, so every dependency (on python3.13) is pinned or the runtime's
    assert "--no-deps" in (layer / "Makefile").read_text()
    environment = {"python_version": "3.13", "python_full_version": "3.13.0", "extra": ""}
    for name in pinned:
        for needed in map(Requirement, requires(name) or []):
            if needed.marker is None or needed.marker.evaluate(environment):
                assert needed.name.lower().replace("_", "-") in set(pinned) | RUNTIME_PACKAGES, (name, needed)
