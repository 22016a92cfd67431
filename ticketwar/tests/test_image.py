"""The production image holds the application and its runtime packages, not the workshop.

There is no Docker engine here: the image's files are the build context ``docker build`` would
send (``.dockerignore`` applied with Docker's rules, ``tools/image.py``; the Dockerfile copies the
whole context), and its packages are ``requirements.txt`` with everything it pulls in, read from
the installed distributions' metadata.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tools.image import ROOT, context_files, excluded, ignore_patterns, requirements, runtime_distributions

SECRETS = (".env", ".env.production", "ticketwar/.env.local", "deploy/.env")


@pytest.mark.parametrize(
    ("dockerignore", "path", "left_out"),
    [  # the examples of Docker's .dockerignore reference
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp/file.txt", True),
        ("*/temp*", "temporary.txt", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("*/*/temp*", "somedir/temporary.txt", False),
        ("temp?", "tempa", True),
        ("temp?", "somedir/tempa", False),
        ("**/*.go", "main.go", True),
        ("**/*.go", "cmd/tool/main.go", True),
        ("# comment\n*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("# comment\n*.md\n!README*.md\nREADME-secret.md", "README-public.md", False),
        ("# comment\n*.md\n!README*.md\nREADME-secret.md", "notes.md", True),
        (".", "manage.py", False),
    ],
)
def test_the_context_follows_dockers_dockerignore_rules(dockerignore, path, left_out):
    assert excluded(path, ignore_patterns(dockerignore)) == left_out


def test_no_secret_test_load_test_or_tool_gets_into_the_image(tmp_path):
    """A fresh clone with .env files dropped in, as an operator leaves them."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    for name in SECRETS:
        (tmp_path / name).write_text("SECRET_KEY=not-for-an-image\n")
    files = context_files(tmp_path)
    assert "manage.py" in files and "ticketwar/settings.py" in files
    assert not [f for f in files if Path(f).name == ".env" or Path(f).name.startswith(".env.")]
    workshop = re.compile(
        r"(^|/)(tests|conftest\.py)(/|$)|^(loadtests|tools|docs|deploy|\.ci|\.git)/|^requirements-dev"
    )
    assert [f for f in files if workshop.search(f)] == []


def test_the_runtime_packages_include_no_development_package():
    development = {canonicalize_name(r.name) for r in requirements(ROOT / "requirements-dev.txt")}
    assert development, "requirements-dev.txt names the development packages"
    assert runtime_distributions() & development == set()


@pytest.mark.slow
def test_the_image_files_and_runtime_packages_collect_static_files_and_load_every_process(tmp_path):
    """The Dockerfile's collectstatic, then what web, ws and the Celery processes import, run in a
    copy of the build context with every installed package that is not a runtime one unimportable."""
    for name in context_files(ROOT):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    # pip, setuptools and wheel come with the base image.
    allowed = runtime_distributions() | {"pip", "setuptools", "wheel"}
    blocked = sorted(
        module
        for module, names in metadata.packages_distributions().items()
        if not {canonicalize_name(n) for n in names} & allowed
    )
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    build_env = dict(re.findall(r"(\w+)=(\S+)", re.search(r"RUN (.*collectstatic.*)", dockerfile).group(1)))
    script = textwrap.dedent(
        f"""
        import importlib.abc, runpy, sys

        class Workshop(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {blocked!r}:
                    raise ModuleNotFoundError(f"{{name}} is not in the image", name=name)

        sys.meta_path.insert(0, Workshop())
        sys.argv = ["manage.py", "collectstatic", "--noinput", "-v", "0"]
        runpy.run_path("manage.py", run_name="__main__")
        import ticketwar.wsgi, ticketwar.asgi
        from ticketwar.celery import app
        app.loader.import_default_modules()
        """
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **build_env}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "staticfiles" / "staticfiles.json").is_file()


def test_make_installs_the_development_packages_when_their_list_changes():
    """The virtualenv's stamp depends on both lists: a changed requirements-dev.txt reinstalls."""
    # Not the variables of a make this test may run under (`make test VENV=...`).
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    result = subprocess.run(
        ["make", "-n", "-W", "requirements-dev.txt", "install"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"pip install .*-r requirements-dev\.txt", result.stdout), result.stdout
