"""Every string a person reads exists in Indonesian (the default) and English (on request).

The catalogs are checked three ways: nothing untranslated or fuzzy in them, the committed
``.mo`` files say what their ``.po`` files say, and no source string lacks an entry (the
catalogs are regenerated from a copy of the code by ``manage.py update_messages``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SKIPPED_DIRS = {".venv", ".git", ".data", "staticfiles", "node_modules", "test-results", "__pycache__", "docs"}


def catalogs(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("locale/id/LC_MESSAGES/django.po")
        if not SKIPPED_DIRS.intersection(path.relative_to(root).parts)
    )


def problems(po_path: Path) -> list[str]:
    """Untranslated and fuzzy messages of one catalog, as readable lines."""
    catalog = polib.pofile(str(po_path))
    found = [f"untranslated: {entry.msgid!r}" for entry in catalog.untranslated_entries()]
    found += [f"fuzzy: {entry.msgid!r}" for entry in catalog.fuzzy_entries()]
    # A plural message needs its (one, for Indonesian) translated form too.
    found += [
        f"plural form missing: {entry.msgid!r}"
        for entry in catalog.translated_entries()
        if entry.msgid_plural and not all(entry.msgstr_plural.values())
    ]
    return found


def test_the_locale_paths_exist_and_every_app_with_strings_has_a_catalog():
    for path in settings.LOCALE_PATHS:
        assert (Path(path) / "id" / "LC_MESSAGES" / "django.po").is_file(), path
    found = {path.relative_to(ROOT).parts[0:-4] for path in catalogs(ROOT)}
    for app in [(), ("accounts",), ("events",), ("tickets",), ("queueing",), ("waitlist",), ("monitoring",)]:
        assert app in found, f"no Indonesian catalog for {'/'.join(app) or 'the project'}"


def test_no_message_in_the_catalogs_is_untranslated_or_fuzzy():
    paths = catalogs(ROOT)
    assert len(paths) >= 7
    report = {str(path.relative_to(ROOT)): problems(path) for path in paths}
    assert {k: v for k, v in report.items() if v} == {}


def test_catalogs_pass_msgfmt_check():
    """Placeholders match their msgid (``%(n)s`` kept), headers and plural forms are valid."""
    for path in catalogs(ROOT):
        result = subprocess.run(
            ["msgfmt", "--check", "-o", "/dev/null", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{path}: {result.stderr}"


def test_the_committed_mo_files_say_what_the_po_files_say():
    """The compiled catalogs are committed (a fresh clone runs without gettext): never stale."""
    for path in catalogs(ROOT):
        mo_path = path.with_suffix(".mo")
        assert mo_path.is_file(), f"{mo_path} is missing: run `manage.py update_messages`"
        compiled = {(e.msgctxt, e.msgid): (e.msgstr, e.msgstr_plural) for e in polib.mofile(str(mo_path)) if e.msgid}
        source = {
            (e.msgctxt, e.msgid): (e.msgstr, e.msgstr_plural) for e in polib.pofile(str(path)).translated_entries()
        }
        assert compiled == source, f"{mo_path} is stale: run `manage.py update_messages`"


def _copy_of_the_code(target: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        return {name for name in names if name in SKIPPED_DIRS or name.endswith((".mo", ".pyc", ".png"))}

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)


def test_every_source_string_has_a_translation(tmp_path):
    """Regenerate the catalogs from a copy of the code: a new string shows up untranslated."""
    copy = tmp_path / "code"
    _copy_of_the_code(copy)
    result = subprocess.run(
        [sys.executable, "manage.py", "update_messages", "--no-compile", "-v", "0"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = {str(path.relative_to(copy)): problems(path) for path in catalogs(copy)}
    assert {k: v for k, v in report.items() if v} == {}, "run `manage.py update_messages` and translate"
    assert [p.relative_to(copy) for p in catalogs(copy)] == [p.relative_to(ROOT) for p in catalogs(ROOT)]


def test_a_new_untranslated_string_is_caught(tmp_path):
    """The check above can fail: a view with a new sentence makes it report that sentence."""
    copy = tmp_path / "code"
    _copy_of_the_code(copy)
    views = copy / "queueing" / "views.py"
    views.write_text(views.read_text() + '\n\nNEW = _("A sentence nobody has translated yet.")\n')
    subprocess.run([sys.executable, "manage.py", "update_messages", "--no-compile", "-v", "0"], cwd=copy, check=True)
    found = problems(copy / "queueing" / "locale" / "id" / "LC_MESSAGES" / "django.po")
    assert found == ["untranslated: 'A sentence nobody has translated yet.'"]


# --- the language a person sees ------------------------------------------------------------


@pytest.mark.django_db
def test_indonesian_by_default_and_english_on_request(client, event, student):
    client.force_login(student)
    html = client.get(f"/events/{event.slug}/").content.decode()
    assert 'lang="id"' in html and "Klaim tiket saya" in html
    html = client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="en"' in html and "Claim my ticket" in html and "Klaim tiket saya" not in html


@pytest.mark.django_db
def test_the_language_switch_in_the_footer_changes_the_language(client, event, student):
    client.force_login(student)
    html = client.get(f"/events/{event.slug}/").content.decode()
    footer = html.split('<footer class="site-footer">')[1]
    assert 'action="/i18n/setlang/"' in footer and 'value="en"' in footer
    response = client.post("/i18n/setlang/", {"language": "en", "next": f"/events/{event.slug}/"})
    assert response.status_code == 302 and response["Location"] == f"/events/{event.slug}/"
    html = client.get(f"/events/{event.slug}/").content.decode()
    assert "Claim my ticket" in html and 'value="id"' in html.split('<footer class="site-footer">')[1]


@pytest.mark.django_db
def test_refusals_and_the_429_answer_in_indonesian(client, make_event, student, settings):
    settings.RATELIMIT_CLAIM = "1/h"
    sold_out = make_event(capacity=1, remaining=0)
    client.force_login(student)
    response = client.post(f"/api/events/{sold_out.slug}/claim/", content_type="application/json")
    assert response.status_code == 410
    assert response.json()["error"] == "Tiket untuk acara ini sudah habis diklaim."
    response = client.post(f"/api/events/{sold_out.slug}/claim/", content_type="application/json")
    assert response.status_code == 429
    assert response.json()["error"].startswith("Terlalu banyak permintaan. Mohon tunggu ")
    response = client.post(
        f"/api/events/{sold_out.slug}/claim/", content_type="application/json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.json()["error"].startswith("Too many requests. Please wait ")


@pytest.mark.django_db
def test_seat_counts_use_plural_forms(client, make_event):
    one = make_event(capacity=5, remaining=1, title="One left")
    make_event(capacity=500, remaining=500, title="Many left")
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "1 seat left" in english and "500 seats left" in english
    indonesian = client.get("/").content.decode()
    assert "1 kursi tersisa" in indonesian and "500 kursi tersisa" in indonesian
    assert one.title in indonesian
