"""The user-scoped store: everything the chat backend reads and writes, one job per function.

Every function is async and keyword-only and takes the acting `user_id`; a row of another
user is `NotFound`, exactly like a missing one. Arguments are validated before any SQL runs
(`ValidationError` names the field) so a rejected call writes nothing. Called inside the
caller's `in_transaction()` (or `@atomic()`), a function runs on that transaction's
connection and commits or rolls back with it; otherwise it runs on a pooled connection,
retried once if the connection is lost.

Queries are hand-written SQL: keyset pagination needs row comparisons Tortoise cannot
express, and building the models straight from rows keeps the hot paths close to the
driver. The models stay the public types. One module per area (users, conversations,
messages and the tree's history, usage, MCP configs, tasks, consistency, search, organise
(folders, tags, archive, pin), retention (the purge), shares, feedback, live replies, MCP
OAuth grants, a user's data out (`export`) and in (`imports`)); the shared parts
are internal: `_rows` (running work, pages, building models), `_cursors`, `_paths` (the
tree's SQL). Listings return a `Page` (a history page, a `HistoryPage`), except where the
whole answer is small and bounded, which their docstrings say.

The areas are imported when one of their names is first used (PEP 562's module
`__getattr__`): a process that starts per request and serves one call imports the area it
calls, not all sixteen. Type checkers read the imports under TYPE_CHECKING.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from faceplate_models.formats.shape import MAX_METADATA_BYTES, MAX_TURN_MESSAGES, MAX_TURN_SIZE
from faceplate_models.store._rows import HistoryPage, Page
from faceplate_models.validation import (
    MAX_INT_DIGITS,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_PAGE,
    MAX_PAGE_BYTES,
    MAX_TEXT_CHARS,
    UNSET,
)

# The store's areas, and the public names of each (a name's area is imported on first use).
_AREAS: dict[str, tuple[str, ...]] = {
    "consistency": ("consistency_token", "read_after", "read_client"),
    "conversations": (
        "create_conversation",
        "delete_conversation",
        "get_conversation",
        "list_conversations",
        "rename_conversation",
        "restore_conversation",
        "update_conversation",
    ),
    "export": ("export_user",),
    "feedback": ("RatedMessage", "list_feedback", "rate_message"),
    "history": (
        "TreeNode",
        "delete_branch",
        "get_history",
        "get_siblings",
        "get_tree",
        "get_turn",
        "list_open_tool_calls",
        "regenerate",
        "switch_branch",
    ),
    "imports": ("Imported", "ImportReport", "import_conversations"),
    "mcp_configs": (
        "delete_mcp_config",
        "get_mcp_config",
        "import_mcp_servers",
        "list_mcp_configs",
        "save_mcp_config",
    ),
    "messages": ("append_message", "append_turn", "check_turn", "edit_message"),
    "oauth": (
        "GrantTokens",
        "begin_mcp_sign_in",
        "complete_mcp_sign_in",
        "get_mcp_client",
        "get_mcp_grant",
        "refresh_mcp_grant",
        "save_mcp_client",
        "save_mcp_grant",
    ),
    "organise": (
        "create_folder",
        "create_tag",
        "delete_folder",
        "delete_tag",
        "list_folders",
        "list_tags",
        "organise_conversation",
        "rename_folder",
        "rename_tag",
    ),
    "replies": ("ReplyWriter", "follow_reply", "start_reply"),
    "retention": ("Purged", "purge_expired"),
    "search": ("SearchHit", "search_messages"),
    "shares": (
        "SharedConversation",
        "ShareLink",
        "get_shared",
        "list_shares",
        "revoke_share",
        "share_conversation",
        "update_share",
    ),
    "tasks": ("add_task", "complete_task", "delete_task", "get_task", "list_tasks", "update_task"),
    "usage": ("Usage", "release", "reserve", "set_budget", "set_model_price", "usage_summary"),
    "users": ("delete_user", "get_or_create_user", "get_user", "get_user_by_subject"),
}
_HOME = {name: area for area, names in _AREAS.items() for name in names}

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_METADATA_BYTES",
    "MAX_PAGE",
    "MAX_PAGE_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_TURN_MESSAGES",
    "MAX_TURN_SIZE",
    "UNSET",
    "HistoryPage",
    "Page",
    *_HOME,
]

if TYPE_CHECKING:
    from faceplate_models.store.consistency import (
        consistency_token as consistency_token,
        read_after as read_after,
        read_client as read_client,
    )
    from faceplate_models.store.conversations import (
        create_conversation as create_conversation,
        delete_conversation as delete_conversation,
        get_conversation as get_conversation,
        list_conversations as list_conversations,
        rename_conversation as rename_conversation,
        restore_conversation as restore_conversation,
        update_conversation as update_conversation,
    )
    from faceplate_models.store.export import export_user as export_user
    from faceplate_models.store.feedback import (
        RatedMessage as RatedMessage,
        list_feedback as list_feedback,
        rate_message as rate_message,
    )
    from faceplate_models.store.history import (
        TreeNode as TreeNode,
        delete_branch as delete_branch,
        get_history as get_history,
        get_siblings as get_siblings,
        get_tree as get_tree,
        get_turn as get_turn,
        list_open_tool_calls as list_open_tool_calls,
        regenerate as regenerate,
        switch_branch as switch_branch,
    )
    from faceplate_models.store.imports import (
        Imported as Imported,
        ImportReport as ImportReport,
        import_conversations as import_conversations,
    )
    from faceplate_models.store.mcp_configs import (
        delete_mcp_config as delete_mcp_config,
        get_mcp_config as get_mcp_config,
        import_mcp_servers as import_mcp_servers,
        list_mcp_configs as list_mcp_configs,
        save_mcp_config as save_mcp_config,
    )
    from faceplate_models.store.messages import (
        append_message as append_message,
        append_turn as append_turn,
        check_turn as check_turn,
        edit_message as edit_message,
    )
    from faceplate_models.store.oauth import (
        GrantTokens as GrantTokens,
        begin_mcp_sign_in as begin_mcp_sign_in,
        complete_mcp_sign_in as complete_mcp_sign_in,
        get_mcp_client as get_mcp_client,
        get_mcp_grant as get_mcp_grant,
        refresh_mcp_grant as refresh_mcp_grant,
        save_mcp_client as save_mcp_client,
        save_mcp_grant as save_mcp_grant,
    )
    from faceplate_models.store.organise import (
        create_folder as create_folder,
        create_tag as create_tag,
        delete_folder as delete_folder,
        delete_tag as delete_tag,
        list_folders as list_folders,
        list_tags as list_tags,
        organise_conversation as organise_conversation,
        rename_folder as rename_folder,
        rename_tag as rename_tag,
    )
    from faceplate_models.store.replies import (
        ReplyWriter as ReplyWriter,
        follow_reply as follow_reply,
        start_reply as start_reply,
    )
    from faceplate_models.store.retention import Purged as Purged, purge_expired as purge_expired
    from faceplate_models.store.search import (
        SearchHit as SearchHit,
        search_messages as search_messages,
    )
    from faceplate_models.store.shares import (
        SharedConversation as SharedConversation,
        ShareLink as ShareLink,
        get_shared as get_shared,
        list_shares as list_shares,
        revoke_share as revoke_share,
        share_conversation as share_conversation,
        update_share as update_share,
    )
    from faceplate_models.store.tasks import (
        add_task as add_task,
        complete_task as complete_task,
        delete_task as delete_task,
        get_task as get_task,
        list_tasks as list_tasks,
        update_task as update_task,
    )
    from faceplate_models.store.usage import (
        Usage as Usage,
        release as release,
        reserve as reserve,
        set_budget as set_budget,
        set_model_price as set_model_price,
        usage_summary as usage_summary,
    )
    from faceplate_models.store.users import (
        delete_user as delete_user,
        get_or_create_user as get_or_create_user,
        get_user as get_user,
        get_user_by_subject as get_user_by_subject,
    )
else:

    def __getattr__(name: str) -> Any:
        """An area's name, its module imported on first use (and the name kept here after)."""
        area = _HOME.get(name)
        if area is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{area}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
