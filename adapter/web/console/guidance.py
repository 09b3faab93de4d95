""" "What to do next" on a message's page: one short paragraph per state, from what the adapter knows of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapter.text import utc_text


def next_step(state: str, delivery: dict[str, Any] | None, *, error_code: str | None = None) -> str:
    """What an operator does about a message in ``state`` with this delivery (``message_log.delivery_view``)."""
    d = delivery or {}
    error = d.get("last_error") or "no error recorded"
    if state == "rejected":
        return (
            f"Refused at receipt and answered with a fault ({error_code or 'see the answer'}): nothing was stored "
            "for delivery. The sender corrects the message and sends it again; there is nothing to resend here."
        )
    if state == "received":
        return "Stored and waiting for a delivery worker: nothing to do. It moves on within seconds while `serve` runs."
    if state == "retrying":
        when = d.get("next_attempt_at")
        at = f"at {utc_text(when)} UTC" if isinstance(when, datetime) else "soon"
        return (
            f"A transient failure ({error}); retried automatically {at} with growing intervals. Nothing to do unless "
            "it keeps failing: then it becomes dead and waits for you."
        )
    if state == "dead":
        return (
            f"Every attempt failed ({d.get('attempts', '?')} attempts; last: {error}). Make the target reachable "
            "again (address, certificate, credentials, the zaaksysteem itself), then Resend. If it was dealt with "
            "outside the adapter, Mark handled with the reason."
        )
    if state == "needs-attention":
        return (
            f"A permanent error that retrying will not fix: {error}. Fix its cause (the mapping file, the zaaktype "
            "or informatieobjecttype in the catalogus, the target's settings), then Resend. If it was dealt with "
            "outside the adapter, Mark handled with the reason."
        )
    if state == "hint-refused":
        return (
            "The werkmap did not confirm this verzoeknotificatie (its verzoek is not there for us). Kept for you, "
            "not retried; it expires by itself ([jobs] refused_hint_days). Resend once the werkmap has the verzoek."
        )
    if state == "handled":
        return "Marked handled by a beheerder (the reason is in the audit log). Resend only to deliver it after all."
    if state == "delivered":
        return f"Delivered: {d.get('outcome') or 'done'}. Nothing to do."
    return "No guidance for this state."
