"""The embedded AWS: a moto server on loopback, and the template's resources created in it.

moto's DynamoDB is not safe under concurrent requests (a cancelled transaction
restores its backup, wiping writes made meanwhile), so the server handles one
DynamoDB request at a time, as one DynamoDB partition would order them; and its transaction
backups are made cheap (``_snapshot_items_not_tables``).
"""

from __future__ import annotations

import contextlib
import copy
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
    """WSGI middleware: one DynamoDB request at a time through moto. Other services go
    through at once: an SQS long poll must not hold up the ledger."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return list(self._app(environ, start_response))
        with self._lock:
            return list(self._app(environ, start_response))


def _item_key(table: Any, op: dict[str, Any]) -> dict[str, Any]:
    """The key of the item a transaction operation names: its Key, or taken from its Item (a Put)."""
    if "Key" in op:
        return op["Key"]
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _snapshot_items_not_tables() -> None:
    """Make moto's TransactWriteItems cost what it writes, not what the table holds.

    moto backs a transaction up by deep-copying every table it touches, once per item,
    and restores the copies if it is cancelled: O(table size) per transaction, which
    makes a long-lived local table slower with every write. Here the backup is of the
    items the transaction names, restored the same way on cancellation. The server runs
    one request at a time, so nothing else can write in between.
    """
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    if getattr(models, "_tollbooth_item_snapshots", False):
        return
    real_copy = copy

    class _TablesAreNotCopied:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

    models.copy = _TablesAreNotCopied  # type: ignore[assignment]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            op: dict[str, Any] = next(iter(entry.values()), {}) if isinstance(entry, dict) else {}
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            try:
                key = _item_key(table, op)
                current = self.get_item(op["TableName"], key)
            except Exception:  # moto's own validation will refuse this transaction
                continue
            before = None if current is None else real_copy.deepcopy(current.to_json()["Attributes"])
            snapshot.append((op["TableName"], key, before))
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(snapshot):
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    models._tollbooth_item_snapshots = True  # type: ignore[attr-defined]


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        _snapshot_items_not_tables()

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
        self._server.server_close()
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


def _with_pseudo_parameters(value: Any, pseudo: dict[str, str]) -> Any:
    """``value`` with AWS::StackName and its kind written out, in a Ref or a Fn::Sub (moto's
    CloudFormation leaves them as they are in some resources' names)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in pseudo:
            return pseudo[value["Ref"]]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"]
            for name, replacement in pseudo.items():
                text = text.replace("${" + name + "}", replacement)
            return {"Fn::Sub": text}
        return {key: _with_pseudo_parameters(item, pseudo) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_pseudo_parameters(item, pseudo) for item in value]
    return value


def _create_stack(
    template: Template, stack_name: str, aws_url: str, resources: dict[str, Any], values: dict[str, str]
) -> dict[str, dict[str, str]]:
    from tollbooth_local.intrinsics import pseudo_parameters

    resources = _with_pseudo_parameters(resources, pseudo_parameters(stack_name))
    # Parameters a deployment must name (JwtIssuer) mean nothing to tables and queues: left out
    # unless given, so any caller can create the stateful resources.
    declared = template.document.get("Parameters", {})
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {name: spec for name, spec in declared.items() if "Default" in spec or name in values},
        "Conditions": template.document.get("Conditions", {}),
        "Resources": resources,
    }
    cloudformation = client("cloudformation", aws_url)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(body, default=str),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items() if key in declared],
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
    # A table kept from an earlier run (PERSIST=1) is used as it is: its data is the point.
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(**request)
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    return {"Ref": table_name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"}


def resolve(value: Any, parameters: dict[str, str], resources: dict[str, dict[str, str]]) -> str:
    """Resolve the intrinsic functions an environment variable may use: Ref (pseudo parameters
    included), GetAtt, Sub, and If (template.yaml's Conditions, on these parameters)."""
    from tollbooth_local import intrinsics

    if isinstance(value, str | int | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::If":
            conditions = intrinsics.evaluate_conditions(Template().document.get("Conditions", {}), parameters)
            return resolve(intrinsics.select(value, conditions), parameters, resources)
        if function == "Ref":
            if argument in parameters:
                return parameters[argument]
            if argument.startswith("AWS::"):
                return intrinsics.pseudo_parameters(parameters.get("AWS::StackName", "tollbooth-local"))[argument]
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

            return re.sub(r"\$\{([\w.:]+)\}", substitute, argument)
    raise ValueError(f"the local stack cannot resolve {value!r}")
