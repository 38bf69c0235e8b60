"""Secrets sealed at rest, result secrets, admin-only error details, audit-trail indexes.

Device secrets and queued commands are sealed with ``LBAAS_SECRET_KEYS``; a
``user:password@`` in a management URL becomes the device's secret (when it has
none) and leaves the URL. Commands already published are dropped from the
outbox (it keeps them an hour only for the record). Device errors recorded before
become admin-only details, and what projects read of them is cleaned as new ones are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

from api_service.secret_keys import SecretKeys
from api_service.settings import ApiSettings
from shared.redaction import for_project

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _keys() -> SecretKeys:
    return SecretKeys(ApiSettings().secret_keys)


def _without_userinfo(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=host)), userinfo


def _convert(transform: Callable[[str], str], *, move_userinfo: bool) -> None:
    connection = op.get_bind()
    devices = connection.execute(
        sa.text("SELECT id, management_url, management_secret FROM devices")
    )
    for device_id, url, secret in devices.all():
        if move_userinfo:
            url, userinfo = _without_userinfo(url)
            secret = secret or userinfo
        connection.execute(
            sa.text(
                "UPDATE devices SET management_url = :url, management_secret = :secret "
                "WHERE id = :id"
            ),
            {"id": device_id, "url": url, "secret": None if secret is None else transform(secret)},
        )
    rows = connection.execute(sa.text("SELECT id, payload FROM outbox"))
    for row_id, payload in rows.all():
        connection.execute(
            sa.text("UPDATE outbox SET payload = :payload WHERE id = :id"),
            {"id": row_id, "payload": transform(payload)},
        )


_TREE_TABLES = (
    "loadbalancers",
    "listeners",
    "pools",
    "members",
    "healthmonitors",
    "l7policies",
    "l7rules",
)


def _clean_errors() -> None:
    connection = op.get_bind()
    failed = connection.execute(sa.text("SELECT id, error FROM operations WHERE error IS NOT NULL"))
    for op_id, error in failed.all():
        connection.execute(
            sa.text("UPDATE operations SET error = :error, error_detail = :detail WHERE id = :id"),
            {"id": op_id, "error": for_project(error), "detail": error},
        )
    for table in _TREE_TABLES:
        reasons = connection.execute(
            sa.text(f"SELECT id, status_reason FROM {table} WHERE status_reason IS NOT NULL")
        )
        for object_id, reason in reasons.all():
            connection.execute(
                sa.text(f"UPDATE {table} SET status_reason = :reason WHERE id = :id"),
                {"id": object_id, "reason": for_project(reason)},
            )


def upgrade() -> None:
    op.add_column("operations", sa.Column("error_detail", sa.Text(), nullable=True))
    op.add_column("operations", sa.Column("result_secret_hash", sa.String(64), nullable=True))
    op.create_index("ix_operations_created", "operations", ["created_at", "id"])
    op.create_index("ix_operations_project", "operations", ["project_id", "created_at", "id"])
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.execute("DELETE FROM outbox WHERE published_at IS NOT NULL")
    keys = _keys()
    _convert(keys.seal, move_userinfo=True)
    _clean_errors()


def downgrade() -> None:
    keys = _keys()
    _convert(keys.open, move_userinfo=False)
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    op.drop_index("ix_operations_project", "operations")
    op.drop_index("ix_operations_created", "operations")
    op.drop_column("operations", "result_secret_hash")
    op.drop_column("operations", "error_detail")
