"""Monitoring routes. Included before the admin so /admin/monitoring/dashboard/ is ours, and
before django_prometheus.urls so /metrics adds the business gauges to every process's metrics."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("admin/monitoring/dashboard/", views.dashboard, name="dashboard"),
    path("api/monitoring/metrics/", views.metrics_api, name="metrics"),
    path("api/monitoring/alerts/", views.alerts_api, name="alerts"),
    path("api/monitoring/history/", views.history_api, name="history"),
    path("api/monitoring/export/<slug:kind>.<slug:fmt>", views.export, name="export"),
    path("metrics", views.prometheus_metrics, name="prometheus"),
]
