"""A new load balancer counts on its device when its transaction commits.

A deferred constraint trigger on ``loadbalancers`` adds the row to its device's
``loadbalancer_count`` at commit, if the device is enabled and has room, and
otherwise fails the commit with a check violation named ``devices_room``. The
device row is locked only while the commit runs in the server, not from a
statement of the client's to its ``COMMIT``: under load the client takes long
between the two, and every create on the device waited behind that.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION lbaas_count_place() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE devices
               SET loadbalancer_count = loadbalancer_count + 1, updated_at = now()
             WHERE id = NEW.device_id AND enabled AND loadbalancer_count < capacity;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'device % has no room for another load balancer', NEW.device_id
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'devices_room';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER loadbalancers_count_place AFTER INSERT ON loadbalancers"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lbaas_count_place()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER loadbalancers_count_place ON loadbalancers")
    op.execute("DROP FUNCTION lbaas_count_place()")
