"""What the production image is made of: the files of its build context and its Python packages.

``context_files`` lists what ``docker build`` sends from a directory: every file whose path, or
the path of any folder above it, is not excluded by ``.dockerignore``, with Docker's own rules
(the file's lines; ``#`` comments; paths cleaned and relative to the context; ``*`` and ``?``
within one path segment, ``**`` across any number of them, ``[...]`` classes, ``\\`` escapes; a
``!`` line lets back in what an earlier line left out; the last matching line decides).

``runtime_distributions`` resolves ``requirements.txt`` through the installed distributions'
metadata: every distribution the runtime requirements pull in, extras and markers applied.
"""

from __future__ import annotations

import os
import posixpath
import re
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def ignore_patterns(text: str) -> list[tuple[bool, re.Pattern]]:
    """``.dockerignore``'s lines as (excludes?, regular expression), in order."""
    patterns = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#"):
            continue
        line = line.strip()
        include = line.startswith("!")
        line = line[1:].strip() if include else line
        if not line:
            continue
        line = re.sub("^/+", "/", posixpath.normpath(line))
        line = line[1:] if len(line) > 1 and line.startswith("/") else line
        patterns.append((not include, re.compile(_regex(line))))
    return patterns


def _regex(pattern: str) -> str:
    out, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += "\\" + pattern[i]
        elif char in "[]":
            out += char
        else:
            out += re.escape(char)
        i += 1
    return out + "$"


def excluded(path: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is left out of the context."""
    parents = path.split("/")[:-1]
    candidates = [path, *("/".join(parents[: i + 1]) for i in range(len(parents)))]
    verdict = False
    for excludes, regex in patterns:
        if excludes != verdict and any(regex.match(candidate) for candidate in candidates):
            verdict = excludes
    return verdict


def context_files(root: Path = ROOT) -> set[str]:
    """The files (and symbolic links) ``docker build root`` sends, as ``/``-separated relative paths."""
    ignore = root / ".dockerignore"
    patterns = ignore_patterns(ignore.read_text()) if ignore.exists() else []
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in [*files, *(d for d in dirs if (Path(folder) / d).is_symlink())]:
            path = (Path(folder) / name).relative_to(root).as_posix()
            if not excluded(path, patterns):
                found.add(path)
    return found


def requirements(path: Path) -> list[Requirement]:
    """The requirements a pip requirements file names itself (not the files it includes with ``-r``)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


@cache
def _requires(name: str) -> list[Requirement]:
    return [Requirement(r) for r in metadata.distribution(name).requires or []]


def distributions(roots: list[Requirement]) -> set[str]:
    """The (canonical) names of ``roots`` and of everything they require, as installed here."""
    seen: set[tuple[str, frozenset]] = set()
    pending = list(roots)
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        extras = requirement.extras or {""}
        for needed in _requires(requirement.name):
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return {name for name, _extras in seen}


def runtime_distributions() -> set[str]:
    return distributions(requirements(ROOT / "requirements.txt"))
