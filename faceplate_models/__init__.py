"""faceplate-models: the persistence layer of Faceplate.

import faceplate_models as fm

await fm.init_db()                      # or: async with fm.database(): ...
user = await fm.get_or_create_user(subject_id="auth0|42", email="ada@example.com")
chat = await fm.create_conversation(user_id=user.id, title="Trip")
"""

from faceplate_models import errors
from faceplate_models.db import close_db, database, init_db
from faceplate_models.errors import (
    ConfigError,
    Conflict,
    ConnectionLost,
    DatabaseError,
    DatabaseUnavailable,
    FaceplateError,
    MigrationError,
    NotFound,
    PoolTimeout,
    ValidationError,
)
from faceplate_models.models import Conversation, MCPConfig, Message, Role, Task, User
from faceplate_models.store import (
    UNSET,
    Page,
    add_task,
    append_message,
    complete_task,
    create_conversation,
    delete_conversation,
    delete_mcp_config,
    delete_task,
    delete_user,
    get_conversation,
    get_history,
    get_or_create_user,
    get_user,
    list_conversations,
    list_mcp_configs,
    list_tasks,
    rename_conversation,
    save_mcp_config,
    update_task,
)

__all__ = [
    "UNSET",
    "ConfigError",
    "Conflict",
    "ConnectionLost",
    "Conversation",
    "DatabaseError",
    "DatabaseUnavailable",
    "FaceplateError",
    "MCPConfig",
    "Message",
    "MigrationError",
    "NotFound",
    "Page",
    "PoolTimeout",
    "Role",
    "Task",
    "User",
    "ValidationError",
    "add_task",
    "append_message",
    "close_db",
    "complete_task",
    "create_conversation",
    "database",
    "delete_conversation",
    "delete_mcp_config",
    "delete_task",
    "delete_user",
    "errors",
    "get_conversation",
    "get_history",
    "get_or_create_user",
    "get_user",
    "init_db",
    "list_conversations",
    "list_mcp_configs",
    "list_tasks",
    "rename_conversation",
    "save_mcp_config",
    "update_task",
]
