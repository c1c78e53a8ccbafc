"""The store's public names: each lives in the area `faceplate_models.store` names for it,
which is imported on first use, and type checkers read the same names from the same areas."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import faceplate_models as fm
from faceplate_models import store
from tests.commands import modules_loaded


def test_each_name_is_its_areas_own_and_loads_only_that_area() -> None:
    for name in store.__all__:
        value = getattr(store, name)
        assert getattr(fm, name) is value
        home = store._HOME.get(name)
        if home is not None:
            assert getattr(importlib.import_module(f"faceplate_models.store.{home}"), name) is value
    loaded = modules_loaded("import faceplate_models as fm\nfm.get_history")
    areas = {m.rsplit(".", 1)[1] for m in loaded if m.startswith("faceplate_models.store.")}
    # history, and what it reads with: feedback, and messages and replies (which init_db uses).
    assert {a for a in areas if not a.startswith("_")} == {
        "feedback",
        "history",
        "messages",
        "replies",
    }


def test_type_checkers_read_the_areas_the_runtime_imports() -> None:
    source = Path(store.__file__).read_text()
    checked: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module is not None
                area = statement.module.rsplit(".", 1)[1]
                checked.setdefault(area, set()).update(a.name for a in statement.names)
    assert checked == {area: set(names) for area, names in store._AREAS.items()}


def test_an_unknown_name_is_an_attribute_error() -> None:
    for module in (fm, store):
        with pytest.raises(AttributeError, match="no_such_name"):
            getattr(module, "no_such_name")  # noqa: B009 - a name no module has
