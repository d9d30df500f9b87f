"""The REST API under ``/api/v1/``: one module per resource, each a serializer and a thin view.

Views only check permissions, parse input and call the domain operations the admin and the CLI
call (:mod:`taxopost.postprocessing.running.operations`). What a request may read or do comes
from the user's role on the rows' project (:mod:`taxopost.api.permissions`, docs/access.md).
List endpoints cost a fixed number of queries whatever the page size: related rows are joined,
and provenance chains are loaded one query per chain level (:mod:`taxopost.observations.provenance`).
"""
