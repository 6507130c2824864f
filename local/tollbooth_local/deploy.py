"""The parameter overrides of a deployment: samconfig.toml's for the environment, with the
ones given on the command line merged over them.

``sam deploy --parameter-overrides`` replaces the environment's ``parameter_overrides``
rather than adding to them (prod's 365-day log retention would silently go); ``make deploy
ENV=prod PARAMS='JwtIssuer=... JwtAudience=...'`` passes this merge instead.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

from tollbooth_local.template import REPO_ROOT, Template

SAMCONFIG = REPO_ROOT / "samconfig.toml"


def parse(overrides: str | list[str]) -> dict[str, str]:
    """``Key=Value`` pairs, values quoted as sam reads them (``Key="a b"``)."""
    tokens = shlex.split(overrides) if isinstance(overrides, str) else overrides
    pairs: dict[str, str] = {}
    for token in tokens:
        key, separator, value = token.partition("=")
        if not separator or not key:
            raise ValueError(f"{token!r} is not Key=Value")
        pairs[key] = value
    return pairs


def configured(environment: str, config: Path = SAMCONFIG) -> dict[str, str]:
    """The environment's parameter_overrides in samconfig.toml."""
    document = tomllib.loads(config.read_text())
    if environment not in document:
        raise ValueError(f"samconfig.toml has no environment {environment!r}")
    deploy = document[environment].get("deploy", {}).get("parameters", {})
    return parse(deploy.get("parameter_overrides", ""))


def merged(environment: str, given: list[str], template: Template | None = None) -> dict[str, str]:
    """samconfig's overrides with ``given`` over them; refuses a parameter the template does not
    declare, and a deployment that leaves a parameter without a default unset."""
    template = template or Template()
    values = {**configured(environment), **parse(given)}
    declared = template.document.get("Parameters", {})
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ValueError(f"template.yaml declares no parameter {', '.join(unknown)}")
    missing = sorted(name for name, spec in declared.items() if "Default" not in spec and not values.get(name))
    if missing:
        raise ValueError(f"{environment} needs {', '.join(missing)} (PARAMS='{'=... '.join(missing)}=...')")
    return values


def render(values: dict[str, str]) -> str:
    """One --parameter-overrides argument, as sam reads it."""
    return " ".join(f'{key}="{value}"' if " " in value else f"{key}={value}" for key, value in values.items())
