"""The environment variables ``ticketwar/settings.py`` reads, found in its source.

One parser for the tests that hold the README and the Kubernetes manifests to the settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def settings_variables() -> set[str]:
    """Names read through the ``env_*`` helpers, ``os.environ`` and ``os.getenv``."""
    tree = ast.parse((ROOT / "ticketwar" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            if (
                (isinstance(func, ast.Name) and func.id.startswith("env_"))
                or (isinstance(func, ast.Attribute) and func.attr == "getenv")
                or (isinstance(func, ast.Attribute) and func.attr == "get" and ast.unparse(func.value) == "os.environ")
            ):
                names.add(node.args[0].value)
        if (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names
