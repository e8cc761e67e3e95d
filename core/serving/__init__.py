"""Serving: the FastAPI app factory, auth dependencies, error mapping, runtimes, batching."""
