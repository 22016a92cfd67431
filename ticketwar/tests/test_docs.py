"""The README stays true to the code: every environment variable the settings read is documented."""

from __future__ import annotations

import re
from pathlib import Path

from tools.envvars import settings_variables

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_from_the_environment_is_in_the_readme():
    names = settings_variables()
    assert len(names) > 30, "the settings should read their values from the environment"
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"README.md does not document: {', '.join(missing)}"


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any("make run" in line for line in head)
    assert any("make test" in line for line in head)


def test_readme_links_point_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?:docs|deploy)/[^)#]+)\)", readme)
    assert targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
