"""Read template.yaml (cfn-lint's decoder understands the short-form tags) into what the
local stack needs: the resources to create, the routes, and each function's handler and env."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

Auth = Literal["none", "jwt", "iam"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /v1/accounts/{account_id}/consume
    function_id: str
    api_id: str
    auth: Auth

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def module_path(self) -> Path:
        module, _ = self.handler.rsplit(".", 1)
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class ScheduleSpec:
    function_id: str
    name: str
    expression: Any  # as written: a string, or a Ref to a parameter


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        document, problems = decode(str(path))
        if problems or document is None:
            raise ValueError(f"cannot read {path}: {problems}")
        self.path = path
        # cfn-lint's nodes carry source marks; plain types pickle (to the local containers) and compare simply.
        self.document: dict[str, Any] = json.loads(json.dumps(document))
        self.resources: dict[str, dict[str, Any]] = self.document.get("Resources", {})

    def parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec["Default"])
            for name, spec in self.document.get("Parameters", {}).items()
            if "Default" in spec
        }

    def resources_of(self, *types: str) -> dict[str, dict[str, Any]]:
        return {name: spec for name, spec in self.resources.items() if spec.get("Type") in types}

    def _function_globals(self) -> dict[str, Any]:
        return self.document.get("Globals", {}).get("Function", {})

    def functions(self) -> dict[str, FunctionSpec]:
        defaults = self._function_globals()
        specs = {}
        for name, resource in self.resources_of("AWS::Serverless::Function").items():
            props = resource.get("Properties", {})
            env = dict(defaults.get("Environment", {}).get("Variables", {}))
            env.update(props.get("Environment", {}).get("Variables", {}))
            specs[name] = FunctionSpec(
                logical_id=name,
                code_uri=self.path.parent / props["CodeUri"],
                handler=props.get("Handler", defaults.get("Handler", "")),
                timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
                environment=env,
            )
        return specs

    def _api_auth(self, api_id: str) -> tuple[str | None, dict[str, Any]]:
        auth = self.resources.get(api_id, {}).get("Properties", {}).get("Auth", {})
        return auth.get("DefaultAuthorizer"), auth.get("Authorizers", {})

    def routes(self) -> list[Route]:
        routes = []
        for name, resource in self.resources_of("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") != "HttpApi":
                    continue
                props = event["Properties"]
                api_id = props["ApiId"]["Ref"]
                default, authorizers = self._api_auth(api_id)
                chosen = props.get("Auth", {}).get("Authorizer", default)
                if chosen in (None, "NONE"):
                    auth: Auth = "none"
                elif chosen == "AWS_IAM":
                    auth = "iam"
                elif "JwtConfiguration" in authorizers.get(chosen, {}):
                    auth = "jwt"
                else:
                    raise ValueError(f"{name}: authorizer {chosen!r} is not one the local stack knows")
                routes.append(Route(props["Method"].upper(), props["Path"], name, api_id, auth))
        return routes

    def schedules(self) -> list[ScheduleSpec]:
        """The EventBridge schedules that invoke functions (Schedule and ScheduleV2 events)."""
        found = []
        for name, resource in self.resources_of("AWS::Serverless::Function").items():
            for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
                props = event.get("Properties", {})
                if event.get("Type") == "Schedule":
                    found.append(ScheduleSpec(name, event_name, props["Schedule"]))
                elif event.get("Type") == "ScheduleV2":
                    found.append(ScheduleSpec(name, event_name, props["ScheduleExpression"]))
        return found

    def event_source_mappings(self) -> list[dict[str, Any]]:
        """Each AWS::Lambda::EventSourceMapping's properties, with the function's logical id
        (a mapping may name the function's alias, ``!Ref Function.Alias``: the same function here)."""
        mappings = []
        for resource in self.resources_of("AWS::Lambda::EventSourceMapping").values():
            props = dict(resource["Properties"])
            function = props["FunctionName"]
            target = function["Ref"] if isinstance(function, dict) else function
            props["FunctionId"] = target.removesuffix(".Alias")
            mappings.append(props)
        return mappings
