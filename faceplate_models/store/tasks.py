"""Tasks: a user's todo list, which the assistant manages through tools."""

from __future__ import annotations

import uuid
from typing import Final

from faceplate_models.models import TASK_TITLE_MAX, Task
from faceplate_models.store import _cursors as cursors
from faceplate_models.store._rows import (
    Page,
    below_limit,
    builder,
    columns,
    delete_owned,
    fetch,
    fetchrow,
    insert_owned,
    missing,
    now,
    page,
    within_budget,
    write_row,
)
from faceplate_models.validation import (
    MAX_PAGE_BYTES,
    MAX_TEXT_CHARS,
    UNSET,
    Unset,
    as_uuid,
    flag,
    new_key,
    optional_text,
    page_size,
    required_text,
)

_COLUMNS = columns(Task)
_tasks = builder(Task, _COLUMNS)


# A task's weight against a page's byte budget: its texts' lengths as stored.
_SIZE: Final = "octet_length(title) + coalesce(octet_length(description), 0)"


def tasks_sql(by_state: bool, after: bool) -> str:
    """The task listing: $1 user, $2 limit, then the state and the cursor when given, then
    the page's byte budget (`within_budget`).

    Four spellings of one query, so that each matches an index exactly: a generic
    "($3 IS NULL OR completed = $3)" would hide the state from the planner.
    """
    where = ["user_id = $1"]
    if by_state:
        where.append("completed = $3")
    if after:
        first = 4 if by_state else 3
        where.append(f"(created_at, id) > (${first}, ${first + 1})")
    select = (
        f"SELECT {_COLUMNS}, {_SIZE} AS size FROM faceplate.tasks "
        f"WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT $2"
    )
    budget = f"${3 + by_state + 2 * after}"
    return within_budget(select, columns=_COLUMNS, order="created_at, id", budget=budget)


async def add_task(
    *,
    user_id: uuid.UUID | str,
    title: str,
    description: str | None = None,
    task_id: uuid.UUID | str | None = None,
) -> Task:
    """Add an open task to the user's list. `task_id`, a uuid7 the caller made, makes the
    call repeatable: a retry with the same id returns the task stored the first time, as it
    is now."""
    uid = as_uuid("user_id", user_id)
    key = new_key("task_id", task_id)
    name = required_text("title", title, TASK_TITLE_MAX)
    text = optional_text("description", description, MAX_TEXT_CHARS)
    row = await insert_owned(
        "tasks",
        _COLUMNS,
        f"""INSERT INTO faceplate.tasks ({_COLUMNS})
            SELECT $2, $1, $3, $4, false, $5::timestamptz, $5
            WHERE {below_limit("tasks", "$6")}
            ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}""",
        uid,
        key,
        name,
        text,
        now(),
        limit="tasks",
    )
    return _tasks(row)


async def get_task(*, user_id: uuid.UUID | str, task_id: uuid.UUID | str) -> Task:
    """One task of the user."""
    uid = as_uuid("user_id", user_id)
    tid = as_uuid("task_id", task_id)
    row = await fetchrow(
        f"SELECT {_COLUMNS} FROM faceplate.tasks WHERE id = $1 AND user_id = $2", tid, uid, user=uid
    )
    if row is None:
        raise missing("task", tid)
    return _tasks(row)


async def list_tasks(
    *,
    user_id: uuid.UUID | str,
    completed: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Task]:
    """The user's tasks in the order they were added, optionally only open or only done ones.

    A cursor belongs to its filter: one from `completed=False` pages only open tasks.
    """
    uid = as_uuid("user_id", user_id)
    state = flag("completed", completed, optional=True)
    size = page_size(limit)
    args: list[object] = [uid, size + 1]
    if state is not None:
        args.append(state)
    if cursor is not None:
        args.extend(cursors.decode("cursor", cursor, cursors.TASKS, uid, state))
    args.append(MAX_PAGE_BYTES)
    rows = await fetch(tasks_sql(state is not None, cursor is not None), *args, user=uid)
    return page(
        rows,
        size,
        _tasks,
        lambda at, row_id: cursors.encode(cursors.TASKS, uid, state, at, row_id),
        "created_at",
    )


async def update_task(
    *,
    user_id: uuid.UUID | str,
    task_id: uuid.UUID | str,
    title: str | Unset = UNSET,
    description: str | Unset | None = UNSET,
    completed: bool | Unset = UNSET,
) -> Task:
    """Change the given fields of a task; a field not passed keeps its value."""
    uid = as_uuid("user_id", user_id)
    tid = as_uuid("task_id", task_id)
    changes: dict[str, object] = {}
    if title is not UNSET:
        changes["title"] = required_text("title", title, TASK_TITLE_MAX)
    if description is not UNSET:
        changes["description"] = optional_text("description", description, MAX_TEXT_CHARS)
    if completed is not UNSET:
        changes["completed"] = flag("completed", completed)
    changes["updated_at"] = now()
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    row = await write_row(
        f"""UPDATE faceplate.tasks SET {assignments}
            WHERE id = $1 AND user_id = $2 RETURNING {_COLUMNS}""",
        tid,
        uid,
        *changes.values(),
        user=uid,
    )
    if row is None:
        raise missing("task", tid)
    return _tasks(row)


async def complete_task(*, user_id: uuid.UUID | str, task_id: uuid.UUID | str) -> Task:
    """Mark a task done (doing it twice is harmless)."""
    return await update_task(user_id=user_id, task_id=task_id, completed=True)


async def delete_task(*, user_id: uuid.UUID | str, task_id: uuid.UUID | str) -> None:
    """Delete a task."""
    uid = as_uuid("user_id", user_id)
    tid = as_uuid("task_id", task_id)
    await delete_owned("tasks", "task", tid, uid)


__all__ = [
    "add_task",
    "complete_task",
    "delete_task",
    "get_task",
    "list_tasks",
    "tasks_sql",
    "update_task",
]
