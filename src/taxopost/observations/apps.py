from django.apps import AppConfig


class ObservationsConfig(AppConfig):
    name = "taxopost.observations"
    label = "observations"
    verbose_name = "Observations"

    def ready(self) -> None:
        from django.db.models import IntegerField
        from django.db.models.fields.related import ForeignObject

        from taxopost.dbutils import AnyOf, RelatedAnyOf

        IntegerField.register_lookup(AnyOf)  # keys: AutoField and BigAutoField are IntegerFields too
        ForeignObject.register_lookup(RelatedAnyOf)
