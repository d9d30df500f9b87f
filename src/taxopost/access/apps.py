from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "taxopost.access"
    label = "access"
    verbose_name = "Access"
