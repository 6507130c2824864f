"""Reading catalog version files into a history of catalogs.

``versions/<version>.toml`` beside this module are the files the pricing team edits:
one file per catalog version, each with the instant it takes effect. Files are read
once per process and validated with pydantic, then against the cross-reference rules.
"""

from __future__ import annotations

import bisect
import tomllib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from pydantic import ValidationError

from tollbooth.domain import clock
from tollbooth.domain.catalog.checks import cross_reference_problems
from tollbooth.domain.catalog.models import Catalog
from tollbooth.domain.errors import CatalogVersionNotFound, NoCatalogInForce

CATALOG_DIR = Path(__file__).with_name("versions")


class CatalogError(ValueError):
    """A catalog file is invalid; ``problems`` lists ``path: message`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: invalid catalog\n" + "\n".join(problems))
        self.problems = problems


def _problems(error: ValidationError) -> list[str]:
    return [".".join(str(part) for part in item["loc"]) + ": " + item["msg"] for item in error.errors()]


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(source, [f"toml: {error}"]) from error
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as error:
        raise CatalogError(source, _problems(error)) from error
    problems = list(cross_reference_problems(catalog))
    if problems:
        raise CatalogError(source, problems)
    return catalog


@dataclass(frozen=True)
class CatalogHistory:
    """Every catalog version, ordered by the instant it takes effect."""

    versions: tuple[Catalog, ...]

    def __post_init__(self) -> None:
        starts = [catalog.effective_from_ms for catalog in self.versions]
        if not self.versions or starts != sorted(set(starts)):
            raise ValueError("catalog versions must be non-empty with distinct, ordered effective_from")

    def in_force(self, at_ms: int) -> Catalog:
        """The version that prices a request made (or usage that occurred) at ``at_ms``."""
        starts = [catalog.effective_from_ms for catalog in self.versions]
        index = bisect.bisect_right(starts, at_ms) - 1
        if index < 0:
            raise NoCatalogInForce(f"no catalog version was in force at {clock.to_iso(at_ms)}")
        return self.versions[index]

    def get(self, version: str) -> Catalog:
        for catalog in self.versions:
            if catalog.version == version:
                return catalog
        known = [catalog.version for catalog in self.versions]
        raise CatalogVersionNotFound(f"unknown catalog version {version!r}; known versions: {known}", allowed=known)

    @classmethod
    def of(cls, *catalogs: Catalog) -> CatalogHistory:
        return cls(tuple(sorted(catalogs, key=lambda catalog: catalog.effective_from_ms)))


def parse_history(files: dict[str, str]) -> CatalogHistory:
    """Validate a set of version files (name -> text) as one history; problems name the file."""
    problems: list[str] = []
    catalogs: list[Catalog] = []
    for name, text in sorted(files.items()):
        try:
            catalog = parse_catalog(text, name)
        except CatalogError as error:
            problems += [f"{name}: {problem}" for problem in error.problems]
            continue
        if Path(name).stem != catalog.version:
            problems.append(f"{name}: version: {catalog.version!r} must match the file name")
        catalogs.append(catalog)
    seen: dict[datetime, str] = {}
    for catalog in catalogs:
        other = seen.setdefault(catalog.effective_from, catalog.version)
        if other != catalog.version:
            problems.append(f"{catalog.version}.toml: effective_from: the same instant as version {other!r}")
    if not files:
        problems.append("no catalog version files")
    if problems:
        raise CatalogError("catalog", problems)
    return CatalogHistory.of(*catalogs)


def read_history(directory: Path) -> CatalogHistory:
    return parse_history({path.name: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.toml"))})


@cache
def load_history(directory: Path = CATALOG_DIR) -> CatalogHistory:
    return read_history(directory)
