"""The API's JSON parser: bodies too deep or holding unrepresentable numbers are a 400.

DRF's own parser lets a document nested a thousand levels deep raise ``RecursionError`` (a
server error) and accepts ``1e999`` as infinity, which PostgreSQL's ``jsonb`` then refuses.
Here the body goes through :func:`taxopost.io.bounded_json.loads`, so every such body is refused
with a message before any view sees it. (A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is refused
by Django before parsing; :mod:`.exceptions` turns that into the same kind of 400.)
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from taxopost.io.bounded_json import RefusedJSON, loads


class BoundedJSONParser(JSONParser):
    """JSON with a depth limit, finite numbers and integers of a bounded length."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"the request body is over the limit of {limit:,} bytes")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(raw.decode(encoding))
        except UnicodeDecodeError:
            raise ParseError(f"JSON parse error: the body is not {encoding} text") from None
        except RefusedJSON as exc:
            raise ParseError(str(exc)) from None
