"""Organisers see the waiting list and its offers (read-only)."""

from __future__ import annotations

from django.contrib import admin

from .models import WaitlistEntry


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(admin.ModelAdmin):
    list_display = ("event", "user", "status", "created_at", "offered_at", "offer_expires_at", "ticket")
    list_filter = ("event", "status")
    search_fields = ("user__nim", "user__email", "user__full_name")
    ordering = ("event", "id")
    list_select_related = ("event", "user", "ticket")

    # Seats are held and passed by services only (docs/OPERATIONS.md): the list is read-only here.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
