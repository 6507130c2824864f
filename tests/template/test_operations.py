"""What an operator relies on, pinned in template.yaml: every alarm notifies someone, the
dashboard shows what exists, first deploys cannot go out with placeholders, names carry the
stack's name, and the API is throttled, logged and open to the browsers it names."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tollbooth_local import deploy
from tollbooth_local.template import REPO_ROOT, Template

TEMPLATE = Template()
RESOURCES = TEMPLATE.resources
PARAMETERS = TEMPLATE.document["Parameters"]
ALARMS = TEMPLATE.resources_of("AWS::CloudWatch::Alarm")
FUNCTIONS = sorted(TEMPLATE.functions())
APIS = sorted(TEMPLATE.resources_of("AWS::Serverless::HttpApi"))
TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmNotifications"}, {"Ref": "AlarmTopic"}]}
TABLE_NAME = {"Fn::If": ["UseRestoredTable", {"Ref": "RestoredTableName"}, {"Ref": "LedgerTable"}]}
PSEUDO = {"AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
LIBRARY = REPO_ROOT / "layers" / "tollbooth" / "tollbooth"


def metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric an alarm watches: (namespace, name, dimensions) whether it is plain or metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"], **props}]
    return [query["MetricStat"]["Metric"] for query in props["Metrics"] if "MetricStat" in query]


def watched() -> list[tuple[str, str, str]]:
    found = []
    for alarm in ALARMS.values():
        for metric in metrics_of(alarm):
            namespace = json.dumps(metric["Namespace"])
            dimensions = json.dumps(metric.get("Dimensions", []))
            found.append((namespace, metric["MetricName"], dimensions))
    return found


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_every_alarm_notifies_the_alarm_topic(alarm_id: str) -> None:
    props = ALARMS[alarm_id]["Properties"]
    assert props["AlarmActions"] == [TOPIC]
    assert props["OKActions"] == [TOPIC]
    assert props["AlarmDescription"]
    assert props["TreatMissingData"] == "notBreaching"


def test_the_alarm_topic_is_a_parameter_or_created_when_it_is_empty() -> None:
    assert PARAMETERS["AlarmTopic"]["Default"] == ""
    assert TEMPLATE.document["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopic"}, ""]}
    topic = RESOURCES["AlarmNotifications"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "CreateAlarmTopic"


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_function_has_an_errors_alarm_and_its_throttles_are_alarmed(function_id: str) -> None:
    dimensions = json.dumps([{"Name": "FunctionName", "Value": {"Ref": function_id}}])
    assert ('"AWS/Lambda"', "Errors", dimensions) in watched()
    assert ('"AWS/Lambda"', "Throttles", dimensions) in watched()


@pytest.mark.parametrize("api_id", APIS)
def test_each_api_has_a_5xx_alarm_access_logs_and_throttling(api_id: str) -> None:
    assert ('"AWS/ApiGateway"', "5xx", json.dumps([{"Name": "ApiId", "Value": {"Ref": api_id}}])) in watched()
    props = RESOURCES[api_id]["Properties"]
    destination = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert RESOURCES[destination]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "routeKey", "status", "responseLatency", "integrationError"} <= set(log_format)
    assert "authorization" not in props["AccessLogSettings"]["Format"].lower()  # never a token
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }


def test_routes_that_need_no_token_have_their_own_lower_throttle() -> None:
    anonymous = {r.route_key for r in TEMPLATE.routes() if r.auth == "none"}
    settings = RESOURCES["PublicApi"]["Properties"]["RouteSettings"]
    assert set(settings) == anonymous
    assert all(s["ThrottlingRateLimit"] == {"Ref": "AnonymousRouteRateLimit"} for s in settings.values())


def test_the_ledger_queues_and_sweep_are_alarmed() -> None:
    table = json.dumps([{"Name": "TableName", "Value": TABLE_NAME}])
    seen = watched()
    assert ('"AWS/DynamoDB"', "WriteThrottleEvents", table) in seen
    assert ('"AWS/DynamoDB"', "ReadThrottleEvents", table) in seen
    dlq = json.dumps([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["UsageDeadLetterQueue", "QueueName"]}}])
    assert ('"AWS/SQS"', "ApproximateNumberOfMessagesVisible", dlq) in seen
    usage = json.dumps([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["UsageQueue", "QueueName"]}}])
    assert ('"AWS/SQS"', "ApproximateAgeOfOldestMessage", usage) in seen
    custom = {name for namespace, name, _ in seen if "Tollbooth/" in namespace}
    expected = {"Status409", "Status503", "ExpiryAccountsFailed", "ExpiryShardsFailed", "ExpirySweepsIncomplete"}
    assert expected | {"OutboxBacklog"} <= custom


def test_custom_metrics_are_the_ones_the_code_emits_in_the_stacks_namespace() -> None:
    env = TEMPLATE.document["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "Tollbooth/${AWS::StackName}"}
    source = "\n".join(path.read_text() for path in LIBRARY.rglob("*.py"))
    for namespace, name, dimensions in watched():
        if "Tollbooth/" not in namespace:
            continue
        assert json.loads(dimensions) == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
        emitted = f'count("{name}"' in source or (name.startswith("Status") and 'count(f"Status{status}")' in source)
        assert emitted, f"nothing emits {name}"


def dashboard() -> tuple[str, dict[str, Any]]:
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return body, variables


def test_the_dashboard_references_only_what_exists_and_shows_every_alarm_and_function() -> None:
    body, variables = dashboard()
    assert variables == {"TableName": TABLE_NAME}
    for reference in set(re.findall(r"\$\{([^}]+)\}", body)):
        logical_id = reference.split(".", 1)[0]
        assert (
            reference in PSEUDO
            or reference in variables
            or logical_id in RESOURCES
            or logical_id
            in {
                "ExpiryFunctionSweepQueue"  # the schedule's dead-letter queue, generated by SAM
            }
        ), reference
    document = json.loads(body)  # every ${...} sits inside a JSON string
    widgets = document["widgets"]
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"${{{a}.Arn}}" for a in ALARMS)
    for function_id in FUNCTIONS:
        assert f"${{{function_id}}}" in body
    for api_id in APIS:
        assert f"${{{api_id}}}" in body
    assert RESOURCES["Dashboard"]["Properties"]["DashboardName"] == {"Fn::Sub": "${AWS::StackName}"}


NAME_PROPERTIES = {"Name", "TableName", "QueueName", "TopicName", "LogGroupName", "DashboardName", "AlarmName"}


@pytest.mark.parametrize("resource_id", sorted(RESOURCES))
def test_every_named_resource_carries_the_stack_name(resource_id: str) -> None:
    props = RESOURCES[resource_id].get("Properties", {})
    for key in NAME_PROPERTIES & set(props):
        text = json.dumps(props[key])
        # The stack's name, or a resource whose generated name already holds it (a function's log group)
        derived = any(f"${{{other}}}" in text for other in RESOURCES)
        assert "AWS::StackName" in text or derived, f"{resource_id}.{key} = {text}"


def test_sam_generated_resources_the_template_names_exist() -> None:
    # SAM names the schedule's dead-letter queue <function><event>Queue; the alarm and dashboard use it
    sweep = RESOURCES["ExpiryFunction"]["Properties"]["Events"]["Sweep"]
    assert sweep["Properties"]["DeadLetterConfig"] == {"Type": "SQS"}
    assert "ExpiryFunctionSweepQueue" in json.dumps(RESOURCES["SweepDeadLetterAlarm"])


def test_cors_origins_are_a_parameter_and_off_by_default() -> None:
    assert PARAMETERS["CorsAllowedOrigins"]["Default"] == ""
    chosen = RESOURCES["PublicApi"]["Properties"]["CorsConfiguration"]["Fn::If"]
    assert chosen[0] == "HasCorsOrigins" and chosen[2] == {"Ref": "AWS::NoValue"}
    assert chosen[1]["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowedOrigins"}]}
    assert {"authorization", "content-type", "idempotency-key"} <= set(chosen[1]["AllowHeaders"])
    assert "CorsConfiguration" not in RESOURCES["ServiceApi"]["Properties"]  # SigV4: no browser calls it


def test_usage_consumers_are_bounded_and_reserved_concurrency_is_optional() -> None:
    (mapping,) = TEMPLATE.event_source_mappings()
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "UsageMaxConcurrency"}}
    assert PARAMETERS["UsageMaxConcurrency"]["MinValue"] == 2  # Lambda's floor
    assert PARAMETERS["ReservedConcurrency"]["Default"] == ""  # new accounts have a quota of 10
    reserved = TEMPLATE.document["Globals"]["Function"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


def test_api_functions_time_out_before_api_gateway_does() -> None:
    # HTTP API waits 30 s at most; a function's own Timeout must come first, so the client
    # gets Lambda's function error (500) rather than the gateway's timeout.
    functions = TEMPLATE.functions()
    for function_id in {route.function_id for route in TEMPLATE.routes()}:
        assert functions[function_id].timeout < 30, function_id


def test_every_function_uses_the_ledger_table_or_the_restored_one() -> None:
    env = TEMPLATE.document["Globals"]["Function"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == TABLE_NAME
    assert RESOURCES["LedgerTable"].get("Condition") is None  # never removed from the stack


PLACEHOLDER = re.compile(r"example|placeholder|changeme|<|>|xxx|todo|tollbooth-dev", re.IGNORECASE)


def prod_values(given: list[str]) -> dict[str, str]:
    values = {name: str(spec["Default"]) for name, spec in PARAMETERS.items() if "Default" in spec}
    return {**values, **deploy.merged("prod", given)}


def test_the_identity_provider_has_no_placeholder_default() -> None:
    for name in ("JwtIssuer", "JwtAudience"):
        assert "Default" not in PARAMETERS[name], f"{name}: a placeholder would deploy and answer 401 to every user"
    with pytest.raises(ValueError, match="JwtAudience, JwtIssuer"):
        deploy.merged("prod", [])


def test_the_prod_config_has_no_placeholder_and_keeps_samconfigs_settings() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())["prod"]
    assert config["global"]["parameters"]["stack_name"] == "tollbooth-prod"
    given = ["JwtIssuer=https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_a1b2c3", "JwtAudience=4f1c2d"]
    values = prod_values(given)
    for name, value in values.items():
        assert not PLACEHOLDER.search(value), f"{name}={value}"
    # What the command line adds is merged over samconfig's, never in place of it
    assert (values["Stage"], values["LogRetentionDays"], values["EnableSwagger"]) == ("prod", "365", "false")
    rendered = deploy.parse(deploy.render(deploy.merged("prod", [*given, "ExpirySchedule=rate(5 minutes)"])))
    assert rendered["LogRetentionDays"] == "365" and rendered["ExpirySchedule"] == "rate(5 minutes)"
    with pytest.raises(ValueError, match="Typo"):
        deploy.merged("prod", [*given, "Typo=1"])


def test_the_readme_deploys_prod_through_the_merge() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make deploy ENV=prod PARAMS=" in readme
    assert "sam deploy --config-env prod --parameter-overrides" not in readme.replace("$(", "")


def test_the_runbook_answers_every_alarm() -> None:
    runbook = (REPO_ROOT / "docs" / "operations.md").read_text()
    for alarm_id in ALARMS:
        assert f"`{alarm_id}`" in runbook, f"docs/operations.md does not say how to answer {alarm_id}"


def test_the_template_path_is_the_repositorys() -> None:
    assert Path(TEMPLATE.path) == REPO_ROOT / "template.yaml"
