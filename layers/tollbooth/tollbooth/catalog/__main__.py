"""``python -m tollbooth.catalog [FILE ...]``: validate catalog files, report problems by path."""

from __future__ import annotations

import sys
from pathlib import Path

from tollbooth.catalog import DEFAULT_CATALOG_PATH, CatalogError, parse_catalog


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or [DEFAULT_CATALOG_PATH]
    failed = False
    for path in paths:
        try:
            catalog = parse_catalog(path.read_text(encoding="utf-8"), str(path))
        except CatalogError as error:
            failed = True
            print(f"{path}: invalid", file=sys.stderr)
            for problem in error.problems:
                print(f"  {problem}", file=sys.stderr)
            continue
        except OSError as error:
            failed = True
            print(f"{path}: {error.strerror}", file=sys.stderr)
            continue
        print(
            f"{path}: ok, version {catalog.version}: {len(catalog.features)} features, {len(catalog.packages)} packages"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
