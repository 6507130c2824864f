"""Size ceilings for `make lint`: no module over MAX_MODULE_LINES lines and no function over
MAX_FUNCTION_LINES lines, across the library, the functions, the local stack and the bench.
Complexity has its own gate (ruff's C901, max-complexity in pyproject.toml).

    python -m tollbooth_local.ceilings [DIR ...]

Prints each breach as `path:line what: N lines` and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from tollbooth_local.template import REPO_ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
CHECKED = ("layers/tollbooth/tollbooth", "functions", "local/tollbooth_local", "bench")


def breaches(path: Path) -> Iterator[str]:
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        yield f"{path}:1 module: {lines} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{path}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})"


def main(directories: list[str]) -> int:
    found = [
        breach
        for directory in directories or [str(REPO_ROOT / part) for part in CHECKED]
        for path in sorted(Path(directory).rglob("*.py"))
        for breach in breaches(path)
    ]
    print("\n".join(found) if found else "size ceilings kept")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
