"""The Tortoise ORM configuration that `aerich` reads (see `[tool.aerich]` in pyproject.toml).

It comes from `faceplate_models.config`: FACEPLATE_MIGRATION_DATABASE_URL when set, else
FACEPLATE_DATABASE_URL, else the embedded development server; like every migration
connection it has `search_path` set to the `faceplate` schema and no request time bounds.
"""

from faceplate_models.db import resolve_tortoise_config

TORTOISE_ORM = resolve_tortoise_config(migrating=True)
