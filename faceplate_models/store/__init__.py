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
"""

from faceplate_models.formats.shape import MAX_METADATA_BYTES, MAX_TURN_MESSAGES, MAX_TURN_SIZE
from faceplate_models.store._rows import HistoryPage, Page
from faceplate_models.store.consistency import consistency_token, read_after, read_client
from faceplate_models.store.conversations import (
    create_conversation,
    delete_conversation,
    get_conversation,
    list_conversations,
    rename_conversation,
    restore_conversation,
    update_conversation,
)
from faceplate_models.store.export import export_user
from faceplate_models.store.feedback import (
    RatedMessage,
    list_feedback,
    rate_message,
)
from faceplate_models.store.history import (
    TreeNode,
    delete_branch,
    get_history,
    get_siblings,
    get_tree,
    get_turn,
    list_open_tool_calls,
    regenerate,
    switch_branch,
)
from faceplate_models.store.imports import Imported, ImportReport, import_conversations
from faceplate_models.store.mcp_configs import (
    delete_mcp_config,
    get_mcp_config,
    import_mcp_servers,
    list_mcp_configs,
    save_mcp_config,
)
from faceplate_models.store.messages import (
    append_message,
    append_turn,
    check_turn,
    edit_message,
)
from faceplate_models.store.oauth import (
    GrantTokens,
    begin_mcp_sign_in,
    complete_mcp_sign_in,
    get_mcp_client,
    get_mcp_grant,
    refresh_mcp_grant,
    save_mcp_client,
    save_mcp_grant,
)
from faceplate_models.store.organise import (
    create_folder,
    create_tag,
    delete_folder,
    delete_tag,
    list_folders,
    list_tags,
    organise_conversation,
    rename_folder,
    rename_tag,
)
from faceplate_models.store.replies import ReplyWriter, follow_reply, start_reply
from faceplate_models.store.retention import (
    Purged,
    purge_expired,
)
from faceplate_models.store.search import (
    SearchHit,
    search_messages,
)
from faceplate_models.store.shares import (
    SharedConversation,
    ShareLink,
    get_shared,
    list_shares,
    revoke_share,
    share_conversation,
    update_share,
)
from faceplate_models.store.tasks import (
    add_task,
    complete_task,
    delete_task,
    get_task,
    list_tasks,
    update_task,
)
from faceplate_models.store.usage import (
    Usage,
    release,
    reserve,
    set_budget,
    set_model_price,
    usage_summary,
)
from faceplate_models.store.users import (
    delete_user,
    get_or_create_user,
    get_user,
    get_user_by_subject,
)
from faceplate_models.validation import (
    MAX_INT_DIGITS,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_PAGE,
    MAX_PAGE_BYTES,
    MAX_TEXT_CHARS,
    UNSET,
)

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
    "GrantTokens",
    "HistoryPage",
    "ImportReport",
    "Imported",
    "Page",
    "Purged",
    "RatedMessage",
    "ReplyWriter",
    "SearchHit",
    "ShareLink",
    "SharedConversation",
    "TreeNode",
    "Usage",
    "add_task",
    "append_message",
    "append_turn",
    "begin_mcp_sign_in",
    "check_turn",
    "complete_mcp_sign_in",
    "complete_task",
    "consistency_token",
    "create_conversation",
    "create_folder",
    "create_tag",
    "delete_branch",
    "delete_conversation",
    "delete_folder",
    "delete_mcp_config",
    "delete_tag",
    "delete_task",
    "delete_user",
    "edit_message",
    "export_user",
    "follow_reply",
    "get_conversation",
    "get_history",
    "get_mcp_client",
    "get_mcp_config",
    "get_mcp_grant",
    "get_or_create_user",
    "get_shared",
    "get_siblings",
    "get_task",
    "get_tree",
    "get_turn",
    "get_user",
    "get_user_by_subject",
    "import_conversations",
    "import_mcp_servers",
    "list_conversations",
    "list_feedback",
    "list_folders",
    "list_mcp_configs",
    "list_open_tool_calls",
    "list_shares",
    "list_tags",
    "list_tasks",
    "organise_conversation",
    "purge_expired",
    "rate_message",
    "read_after",
    "read_client",
    "refresh_mcp_grant",
    "regenerate",
    "release",
    "rename_conversation",
    "rename_folder",
    "rename_tag",
    "reserve",
    "restore_conversation",
    "revoke_share",
    "save_mcp_client",
    "save_mcp_config",
    "save_mcp_grant",
    "search_messages",
    "set_budget",
    "set_model_price",
    "share_conversation",
    "start_reply",
    "switch_branch",
    "update_conversation",
    "update_share",
    "update_task",
    "usage_summary",
]
