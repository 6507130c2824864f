"""The embedded AWS: a moto server on loopback, and the template's resources created in it.

moto's DynamoDB is not safe under concurrent requests (a cancelled transaction
restores a deep copy of the whole table, wiping writes made meanwhile), so the
server handles one request at a time, as one DynamoDB partition would order them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from werkzeug.serving import BaseWSGIServer, make_server

from tollbooth_local.template import Template

STATEFUL_TYPES = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Events::EventBus")
REGION = "us-east-1"
ACCOUNT = "123456789012"


# What every local process (stack, tests, bench) runs with: fake credentials, so nothing
# can reach a real AWS account, and Powertools quiet (no X-Ray daemon, no EMF lines).
OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def use_offline_environment() -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(OFFLINE_ENV)


class _Serialized:
    """WSGI middleware: one request at a time through moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = _Serialized(DomainDispatcherApplication(create_backend_app))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def create_stateful_resources(
    template: Template,
    stack_name: str,
    aws_url: str,
    dynamodb_url: str | None = None,
    parameters: dict[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Create the template's tables and queues; return {logical id: {"Ref": ..., attr: ...}}.

    Everything goes through moto's CloudFormation, which resolves Ref and GetAtt
    between resources (a queue and its DLQ). When ``dynamodb_url`` is given the
    tables are created on that engine (DynamoDB Local) from the same properties.
    """
    values = {**template.parameter_defaults(), **(parameters or {})}
    stateful = template.resources_of(*STATEFUL_TYPES)
    tables = {name: spec for name, spec in stateful.items() if spec["Type"] == "AWS::DynamoDB::Table"}
    in_moto = {name: spec for name, spec in stateful.items() if dynamodb_url is None or name not in tables}
    created: dict[str, dict[str, str]] = {}
    if in_moto:
        created.update(_create_stack(template, stack_name, aws_url, in_moto, values))
    if dynamodb_url is not None:
        for name, spec in tables.items():
            created[name] = create_table(dynamodb_url, f"{stack_name}-{name}", spec["Properties"])
    return created


def _create_stack(
    template: Template, stack_name: str, aws_url: str, resources: dict[str, Any], values: dict[str, str]
) -> dict[str, dict[str, str]]:
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": template.document.get("Parameters", {}),
        "Conditions": template.document.get("Conditions", {}),
        "Resources": resources,
    }
    cloudformation = client("cloudformation", aws_url)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(body, default=str),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
    )
    created: dict[str, dict[str, str]] = {}
    for resource in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]:
        name, physical = resource["LogicalResourceId"], resource.get("PhysicalResourceId", "")
        if resource["ResourceType"] == "AWS::Events::EventBus":
            # moto reports no physical id for a bus; its name is the one the template gives.
            bus = resolve(resources[name]["Properties"]["Name"], values, {})
            created[name] = {"Ref": bus, "Name": bus, "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"}
        elif resource["ResourceType"] == "AWS::DynamoDB::Table":
            created[name] = {"Ref": physical, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"}
        elif resource["ResourceType"] == "AWS::SQS::Queue":
            queue_name = physical.rsplit("/", 1)[-1]
            created[name] = {
                "Ref": physical,
                "QueueUrl": physical,
                "QueueName": queue_name,
                "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}",
            }
    return created


def create_table(dynamodb_url: str, table_name: str, props: dict[str, Any]) -> dict[str, str]:
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if props.get("BillingMode", "PROVISIONED") == "PAY_PER_REQUEST":
        request["BillingMode"] = "PAY_PER_REQUEST"
    else:
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            request[key] = props[key]
    dynamodb = client("dynamodb", dynamodb_url)
    dynamodb.create_table(**request)
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    return {"Ref": table_name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"}


def resolve(value: Any, parameters: dict[str, str], resources: dict[str, dict[str, str]]) -> str:
    """Resolve the intrinsic functions an environment variable may use: Ref, GetAtt, Sub."""
    if isinstance(value, str | int | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument in parameters:
                return parameters[argument]
            return resources[argument]["Ref"]
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return resources[logical_id][attribute]
        if function == "Fn::Sub" and isinstance(argument, str):

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if "." in name:
                    logical_id, attribute = name.split(".", 1)
                    return resources[logical_id][attribute]
                return resolve({"Ref": name}, parameters, resources)

            return re.sub(r"\$\{([\w.]+)\}", substitute, argument)
    raise ValueError(f"the local stack cannot resolve {value!r}")
