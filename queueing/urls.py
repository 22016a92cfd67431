from __future__ import annotations

app_name = "queueing"

urlpatterns: list = []
