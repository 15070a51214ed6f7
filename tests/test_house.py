"""The house rules that a reader of the code can count: no module in bot/ or adapters/ over 400
lines, function lengths short (p90 at most 25 lines, def line to last line, docstring included), and
code outside a package importing the package's surface, never its modules."""

from __future__ import annotations

import ast
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_P90_FUNCTION_LINES = 25


def modules() -> list[Path]:
    """Every Python module of bot/ and adapters/ but alembic's (bot/migrations: it writes them)."""
    found = [p for top in ("bot", "adapters") for p in sorted((ROOT / top).rglob("*.py"))]
    return [p for p in found if "migrations" not in p.relative_to(ROOT).parts]


def name_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def function_lengths() -> list[tuple[int, str]]:
    """(lines, where) of every function and method, nested ones included, shortest first."""
    lengths = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                lengths.append((node.end_lineno - node.lineno + 1, where))
    return sorted(lengths)


def percentile(values: list[int], share: float) -> int:
    """The nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(share * len(values)) - 1)]


def test_no_module_is_over_400_lines() -> None:
    sizes = sorted(((len(p.read_text().splitlines()), name_of(p)) for p in modules()), reverse=True)
    largest = ", ".join(f"{name} {lines}" for lines, name in sizes[:5])
    over = [f"{name} ({lines} lines)" for lines, name in sizes if lines > MAX_MODULE_LINES]
    assert len(sizes) > 50, f"only {len(sizes)} modules found under {ROOT}"
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {', '.join(over)}; largest: {largest}"


def test_function_length_p90_is_at_most_25_lines() -> None:
    lengths = function_lengths()
    values = [lines for lines, _ in lengths]
    p90 = percentile(values, 0.90)
    figures = (
        f"{len(values)} functions: p50 {percentile(values, 0.50)}, p90 {p90}, "
        f"p99 {percentile(values, 0.99)}, max {values[-1]}; longest: "
        + ", ".join(f"{where} ({lines})" for lines, where in lengths[-5:][::-1])
    )
    assert p90 <= MAX_P90_FUNCTION_LINES, f"function length p90 over {MAX_P90_FUNCTION_LINES}: {figures}"


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 11))
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 1.0)) == (5, 9, 10)
    assert percentile([1] * 89 + [30] * 11, 0.9) == 30  # 11% long functions are too many


def imported_modules(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of each import; `from package import name` counts as package.name, which is
    a module only where name is one."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_code_outside_a_package_imports_its_surface() -> None:
    packages = {name_of(p.parent / "__init__.py") for p in modules() if p.name == "__init__.py"}
    packages -= {"bot", "adapters"}
    internals = {name_of(p) for p in modules()} - packages - {"bot", "adapters"}
    reaches = []
    for path in modules():
        me = name_of(path)
        for line, module in imported_modules(ast.parse(path.read_text())):
            if module not in internals:
                continue
            owner = module.rsplit(".", 1)[0]
            if owner in packages and me != owner and not me.startswith(owner + "."):
                reaches.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not reaches, "code outside a package imports its modules, not its __init__: " + "; ".join(reaches)
