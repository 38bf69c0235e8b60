"""The async engine and session factory."""

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from api_service.settings import ApiSettings

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: ApiSettings) -> AsyncEngine:
    """No pre-ping: it costs three round trips per checkout (asyncpg's ping is a
    transaction). A connection found lost when used raises a disconnect error, which
    invalidates the whole pool; that request is answered 503 and the next ones reconnect."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
    )


def plain_dsn(database_url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver name)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions for reads only, each statement on its own (autocommit), on the same pool.

    Under PostgreSQL's READ COMMITTED every statement takes its own snapshot, in a
    transaction or not, so a read sees the same without one and saves the two round trips
    of its ``BEGIN`` and ``ROLLBACK``. Nothing that writes or locks may use them.
    """
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )
