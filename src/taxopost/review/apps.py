from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "taxopost.review"
    label = "review"
    verbose_name = "Review"
