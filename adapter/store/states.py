"""The states a message can be in, as the operators' commands offer them (``messages list --state``).

Kept here, apart from the store's modules, so that the command line can name them without importing the
store (SQLAlchemy, Alembic) at every start. ``adapter.store.message_log`` checks at import that this list is
exactly the intake's states plus those a delivery moves a message to.
"""

MESSAGE_STATES: tuple[str, ...] = (
    "received",
    "rejected",
    "hint-refused",
    "delivered",
    "dead",
    "retrying",
    "needs-attention",
    "handled",
)
