"""Staff look up and manage accounts here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "nim", "full_name", "email", "email_verified_at", "is_staff", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active", ("email_verified_at", admin.EmptyFieldListFilter))
    search_fields = ("nim", "email", "username", "full_name")
    ordering = ("username",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Student"), {"fields": ("nim", "full_name", "email", "email_verified_at")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "full_name", "email", "password1", "password2")}),
    )
    actions = ("mark_verified",)

    @admin.action(description=_("Mark e-mail as verified"))
    def mark_verified(self, request, queryset):
        count = queryset.filter(email_verified_at__isnull=True).update(email_verified_at=timezone.now())
        self.message_user(request, _("%(count)d accounts marked verified.") % {"count": count}, messages.SUCCESS)
