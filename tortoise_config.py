"""The Tortoise ORM configuration that `aerich` reads (see `[tool.aerich]` in pyproject.toml).

It comes from `faceplate_models.config`: FACEPLATE_DATABASE_URL when set, otherwise the
embedded development server. Every connection, Aerich's included, has `search_path`
set to the `faceplate` schema.
"""

from faceplate_models.db import resolve_tortoise_config

TORTOISE_ORM = resolve_tortoise_config()
