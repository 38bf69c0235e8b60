"""The async engine and session factory."""

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from api_service.settings import ApiSettings

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: ApiSettings) -> AsyncEngine:
    """A fixed pool: when every connection is in use, a session waits for one (a 503 after
    the pool's 30 s) rather than opening another. An overflow connection is closed again
    when it comes back, so at a peak each use paid a connect, asyncpg's type introspection
    and its prepares, in the API and in the server: with 50 clients that took longer than
    the queue it avoided (500 updates over 50 devices, ``bench.devices``: 8.4 to 8.7 s with 20
    connections and 20 overflow, 5.2 to 5.8 s with 20 and none, 5.8 s with 100 and 100).

    No pre-ping: it costs three round trips per checkout (asyncpg's ping is a
    transaction). A connection found lost when used raises a disconnect error, which
    invalidates the whole pool; that request is answered 503 and the next ones reconnect."""
    return create_async_engine(
        settings.database_url, pool_size=settings.db_pool_size, max_overflow=0
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
