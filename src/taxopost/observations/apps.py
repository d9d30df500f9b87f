from django.apps import AppConfig


class ObservationsConfig(AppConfig):
    name = "taxopost.observations"
    label = "observations"
    verbose_name = "Observations"
