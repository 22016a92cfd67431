"""The admin speaks Indonesian: every app section, model, field, column, filter, choice and
action an organiser reads there has a translation (the admin's own words are Django's)."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, label_for_field
from django.utils import translation

# Words that are the same in Indonesian (or a name): nothing to translate.
SAME_IN_BOTH = {"ID", "NIM", "status", "Status", "QR payload", "Email address"}


def in_both(text) -> tuple[str, str]:
    with translation.override("en"):
        english = str(text)
    with translation.override("id"):
        return english, str(text)


def admin_labels():
    """``(where, label)`` for every label of every model the admin shows."""
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        model_admin = admin.site.get_model_admin(model)
        meta = model._meta
        name = f"{meta.app_label}.{meta.model_name}"
        yield f"{meta.app_label} (app section)", apps.get_app_config(meta.app_label).verbose_name
        yield name, meta.verbose_name
        yield name, meta.verbose_name_plural
        for field in meta.get_fields():
            if not hasattr(field, "verbose_name"):
                continue  # a reverse relation: shown under the other model's name
            yield f"{name}.{field.name}", field.verbose_name
            if field.help_text:
                yield f"{name}.{field.name} (help)", field.help_text
            for _value, choice in field.flatchoices or ():
                yield f"{name}.{field.name} (choice)", choice
        for column in model_admin.list_display:
            if column != "__str__":
                yield f"{name} column {column}", label_for_field(column, model, model_admin)
        for list_filter in model_admin.list_filter:
            if isinstance(list_filter, tuple):  # (field, filter class): titled by the field
                list_filter = list_filter[0]
            if isinstance(list_filter, str):  # titled by the last field of the path, as the admin does
                yield f"{name} filter {list_filter}", get_fields_from_path(model, list_filter)[-1].verbose_name
            else:
                yield f"{name} filter {list_filter.__name__}", list_filter.title
        for action in model_admin.actions or ():
            function = action if callable(action) else getattr(model_admin, action)
            yield f"{name} action {function.__name__}", function.short_description


def test_every_admin_label_has_an_indonesian_translation(db):
    untranslated = sorted(
        f"{where}: {english!r}"
        for where, label in admin_labels()
        for english, indonesian in [in_both(label)]
        if english == indonesian and english not in SAME_IN_BOTH
    )
    assert untranslated == []


def test_the_admin_has_the_products_name():
    with translation.override("id"):
        assert str(admin.site.site_header) == "Administrasi ticketwar"
        assert "Django" not in str(admin.site.site_title)
