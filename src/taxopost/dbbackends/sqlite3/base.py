"""SQLite, the embedded default, set up for a job thread beside a web server.

- Django assumes SQLite's historical limit of 999 query parameters and splits bulk writes into
  many statements; SQLite >= 3.32 allows 32,766, so a chunk of classifications is written in
  a fixed number of statements whatever its size.
- WAL journal lets readers (the web pages) work while a job writes; writers wait for each
  other up to the connection timeout (``TAXOPOST_SQLITE_TIMEOUT``, seconds).
"""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base, features


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection
