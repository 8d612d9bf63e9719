"""Alembic migrations of the yuqing database, shipped inside the package.

Run them with `pipeline.storage.db.upgrade(url)` (or `yuqing db upgrade`); the Alembic
configuration is built in code by `pipeline.storage.db.alembic_config`, so there is no
`alembic.ini`. Revisions are numbered `0001`, `0002`, ...; a new one is generated against a
database at head (see `alembic_config`), then read and corrected by hand, and a test checks
that the models and the migrations describe the same schema.
"""
