from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from taxopost.access.login import MemberLoginView

admin.site.site_header = "taxopost"
admin.site.site_title = "taxopost"
admin.site.index_title = "Post-processing of classifier predictions"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("login/", MemberLoginView.as_view(), name="login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("taxopost.api.urls")),
    path("review/", include("taxopost.review.urls")),
    path("evaluation/", include("taxopost.review.evaluation_urls")),
]
