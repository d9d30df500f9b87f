from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "taxopost.ml"
    label = "ml"
    verbose_name = "Algorithms"
