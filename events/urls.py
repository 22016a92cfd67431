from __future__ import annotations

app_name = "events"

urlpatterns: list = []
