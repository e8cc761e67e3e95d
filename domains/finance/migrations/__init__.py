"""Alembic version folder of the finance branch."""
