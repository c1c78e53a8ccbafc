"""An application's own model, as `init_db(models=[...])` registers it: a table of its own, with
a foreign key to this package's users."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Note(Model):
    """A user's note, kept by the application."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.User", related_name="notes", on_delete=fields.CASCADE
    )
    text = fields.TextField()

    class Meta:
        table = "app_notes"

    def __str__(self) -> str:
        return self.text
