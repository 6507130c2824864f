"""``python -m tollbooth.catalog [PATH ...]``: validate catalog versions, report problems by path.

With no argument it checks the shipped version directory as one history (each file,
then the rules across versions); a directory argument is checked the same way, and a
file argument is checked on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tollbooth.domain.catalog import CATALOG_DIR, Catalog, CatalogError, parse_catalog, read_history


def summary(catalog: Catalog) -> str:
    return (
        f"ok, version {catalog.version}, effective {catalog.effective_from.isoformat()}: "
        f"{len(catalog.features)} features, {len(catalog.packages)} packages, {len(catalog.plans)} plans, "
        f"{len(catalog.campaigns)} campaigns"
    )


def check(path: Path) -> list[str]:
    """Validate one path; print what it holds, return its problems."""
    try:
        if path.is_dir():
            for catalog in read_history(path).versions:
                print(f"{path / catalog.version}.toml: {summary(catalog)}")
        else:
            print(f"{path}: {summary(parse_catalog(path.read_text(encoding='utf-8'), str(path)))}")
    except CatalogError as error:
        return error.problems
    except OSError as error:
        return [f"{path}: {error.strerror}"]
    return []


def main(argv: list[str]) -> int:
    failed = False
    for path in [Path(arg) for arg in argv] or [CATALOG_DIR]:
        problems = check(path)
        if problems:
            failed = True
            print(f"{path}: invalid", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
