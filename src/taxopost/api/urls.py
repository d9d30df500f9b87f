"""Routes of ``/api/v1/``."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from taxopost.api.algorithms import AlgorithmViewSet
from taxopost.api.capture_sets import CaptureSetViewSet
from taxopost.api.classifications import ClassificationViewSet
from taxopost.api.jobs import JobViewSet
from taxopost.api.occurrences import OccurrenceViewSet
from taxopost.api.tasks import TaskViewSet
from taxopost.api.taxa import TaxaListViewSet, TaxonViewSet
from taxopost.api.tokens import TokenViewSet

app_name = "api"

router = DefaultRouter()
router.register("taxa", TaxonViewSet, basename="taxon")
router.register("taxa-lists", TaxaListViewSet, basename="taxalist")
router.register("capture-sets", CaptureSetViewSet, basename="captureset")
router.register("occurrences", OccurrenceViewSet, basename="occurrence")
router.register("classifications", ClassificationViewSet, basename="classification")
router.register("algorithms", AlgorithmViewSet, basename="algorithm")
router.register("jobs", JobViewSet, basename="job")
router.register("tasks", TaskViewSet, basename="task")
router.register("tokens", TokenViewSet, basename="token")

urlpatterns = [
    # The schema describes the API, not its data: served without a login so clients can be generated.
    path(
        "schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]), name="schema"
    ),
    # Browsable documentation of that schema (Swagger UI, from the installed package: no CDN; Redoc
    # is left out, its page loads fonts from Google). The split view serves the start-up script as
    # a file, not inline, so a strict Content-Security-Policy allows it.
    path(
        "schema/swagger/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=[AllowAny]),
        name="swagger-ui",
    ),
    path("", include(router.urls)),
]
