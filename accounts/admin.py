"""Staff look up and manage accounts here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from common.timefmt import short_local

from . import limits, services
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
        count = limits.login_unlock(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)d accounts unlocked.") % {"count": count}, messages.SUCCESS)


@admin.register(LoginThrottle)
class LoginThrottleAdmin(admin.ModelAdmin):
    """Accounts with failed logins from unknown clients: how many, and until when they wait.

    Only accounts are listed (not the counts of unknown names, devices or addresses); the action
    unlocks them at once.
    """

    list_display = ("user", "attempts", "last_failed", "waits_until")
    list_select_related = ("user",)
    search_fields = ("user__nim", "user__email", "user__username")
    ordering = ("-last_attempt_at",)
    readonly_fields = ("user", "attempts", "last_attempt_at", "locked_until")
    fields = readonly_fields
    actions = ("unlock",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(key__startswith="account:", attempts__gt=0)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("last failed login"), ordering="last_attempt_at")
    def last_failed(self, throttle: LoginThrottle) -> str:
        return short_local(throttle.last_attempt_at) if throttle.attempts else "—"

    @admin.display(description=_("locked until"), ordering="locked_until")
    def waits_until(self, throttle: LoginThrottle) -> str:
        """Until when a login from a client the account does not know is refused; "—" if it is not."""
        if throttle.locked_until is None or throttle.locked_until <= timezone.now():
            return "—"
        local = timezone.localtime(throttle.locked_until)  # to the second: the first waits are seconds long
        return f"{date_format(local, 'j M, H:i:s')} {local.tzname()}"

    @admin.action(description=_("Unlock login (forget failed attempts)"))
    def unlock(self, request, queryset):
        count = limits.login_unlock(user_ids=queryset.values_list("user_id", flat=True))
        self.message_user(request, _("%(count)d accounts unlocked.") % {"count": count}, messages.SUCCESS)
