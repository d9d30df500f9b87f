from django.apps import AppConfig


class TaxaConfig(AppConfig):
    name = "taxopost.taxa"
    label = "taxa"
    verbose_name = "Taxa"
