"""Staff look up and manage accounts here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from . import services
from .forms import StaffLoginForm
from .models import LoginThrottle, User

# /admin/login/ under the same guessing limits as the students' login page (staff: strictest).
admin.site.login_form = StaffLoginForm


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
    actions = ("mark_verified", "unlock_login")

    @admin.action(description=_("Mark e-mail as verified"))
    def mark_verified(self, request, queryset):
        count = services.students_mark_verified(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)d accounts marked verified.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Unlock login (forget failed attempts)"))
    def unlock_login(self, request, queryset):
        count = services.login_unlock(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)d accounts unlocked.") % {"count": count}, messages.SUCCESS)


@admin.register(LoginThrottle)
class LoginThrottleAdmin(admin.ModelAdmin):
    """Accounts with recent failed logins; the action unlocks them at once."""

    list_display = ("user", "failures", "last_failure_at")
    list_select_related = ("user",)
    search_fields = ("user__nim", "user__email", "user__username")
    ordering = ("-last_failure_at",)
    readonly_fields = ("user", "failures", "last_failure_at")
    actions = ("unlock",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Unlock login (forget failed attempts)"))
    def unlock(self, request, queryset):
        count = services.login_unlock(user_ids=queryset.values_list("user_id", flat=True))
        self.message_user(request, _("%(count)d accounts unlocked.") % {"count": count}, messages.SUCCESS)
