"""The deployment's limits on what one user keeps (`config.Limits`): installed by `init_db`,
read by the writes that create rows, each of which checks its limit under a lock, so that
concurrent creators cannot pass it together."""

from __future__ import annotations

from faceplate_models.config import Limits
from faceplate_models.errors import QuotaExceeded

# The limits `init_db` installed; the defaults until then.
_limits = Limits()


def use(limits: Limits) -> None:
    """Install the limits the store enforces (`init_db` does)."""
    global _limits
    _limits = limits


def limits() -> Limits:
    """The limits in force."""
    return _limits


def exceeded(kind: str, where: str) -> QuotaExceeded:
    """The error of a user at the limit of `kind` (a field of `Limits`), `where` they are."""
    limit = getattr(_limits, kind)
    what = kind.replace("_per_conversation", "").replace("_", " ")
    return QuotaExceeded(
        f"{where} already has {limit} {what}, the most this deployment allows "
        f"({Limits.VARIABLES[kind]}): delete some first"
    )


__all__ = ["exceeded", "limits", "use"]
