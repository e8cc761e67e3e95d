"""Dashboard accounts: local users (argon2) and single sign-on, roles, sessions, lockout."""
