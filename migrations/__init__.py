"""Alembic migrations; run them with ``lbaas-manage db upgrade``."""
