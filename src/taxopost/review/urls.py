from django.urls import path

from taxopost.review.views import capture_set_review

app_name = "review"

urlpatterns = [
    path("capture-sets/<int:pk>/", capture_set_review, name="capture-set"),
]
