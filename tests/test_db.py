from __future__ import annotations

from tortoise import connections

from faceplate_models.config import DatabaseTarget


async def test_smoke(faceplate_db: DatabaseTarget) -> None:
    rows = await connections.get("default").execute_query_dict("SHOW search_path")
    assert rows == [{"search_path": "faceplate"}]
