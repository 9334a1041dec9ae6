"""Architecture rules: core never imports the dashboard or Panel; no global RNG in core."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_FILES = sorted((ROOT / "core").rglob("*.py"))
FORBIDDEN = ("panel", "dashboard", "holoviews", "bokeh")


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_does_not_import_the_dashboard(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


GLOBAL_RNG = {"seed", "rand", "randn", "randint", "random", "choice", "permutation", "shuffle",
              "normal", "uniform", "standard_normal"}


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_uses_no_global_numpy_rng(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in GLOBAL_RNG
                and isinstance(node.value, ast.Attribute) and node.value.attr == "random"
                and isinstance(node.value.value, ast.Name) and node.value.value.id in ("np", "numpy")):
            raise AssertionError(f"{path.name}:{node.lineno} calls np.random.{node.attr}; inject a Generator")


def test_no_assert_on_user_input_in_core():
    for path in CORE_FILES:
        tree = ast.parse(path.read_text())
        asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
        assert not asserts, f"{path.name} uses assert at lines {asserts}; raise UnitScopeError instead"


def test_checkpoints_are_loaded_weights_only():
    for path in list(CORE_FILES) + sorted((ROOT / "dashboard").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                assert "weights_only" in kw and getattr(kw["weights_only"], "value", None) is True, \
                    f"{path.name}:{node.lineno} torch.load without weights_only=True"
