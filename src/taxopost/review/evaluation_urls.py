from django.urls import path

from taxopost.review.evaluation import capture_set_evaluation

app_name = "evaluation"

urlpatterns = [
    path("capture-sets/<int:pk>/", capture_set_evaluation, name="capture-set"),
]
