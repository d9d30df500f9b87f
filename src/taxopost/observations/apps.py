from django.apps import AppConfig


class ObservationsConfig(AppConfig):
    name = "taxopost.observations"
    label = "observations"
    verbose_name = "Observations"

    def ready(self) -> None:
        from django.db.models import Field
        from django.db.models.fields.related import ForeignObject

        from taxopost.dbutils import AnyOf, RelatedAnyOf

        Field.register_lookup(AnyOf)
        ForeignObject.register_lookup(RelatedAnyOf)
