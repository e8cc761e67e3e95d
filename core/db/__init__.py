"""Database access: SQLAlchemy 2.0 models, engines and sessions, Alembic migrations."""

from verticals.core.db.base import Base, utcnow
from verticals.core.db.session import get_engine, reset_engines, session_scope

__all__ = ["Base", "get_engine", "reset_engines", "session_scope", "utcnow"]
