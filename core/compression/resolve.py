"""Finding the CompressionTarget for a command's ``--model`` argument.

- ``<domain>/<model>``: the domain plugin's optional hook
  ``compression_target(model_name, data_file, split) -> CompressionTarget | None``;
- ``package.module:factory``: any importable factory with the same signature (targets outside a
  domain plugin: experiments, third-party models).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from verticals.core.compression.target import CompressionTarget
from verticals.core.compression.trees import TreeCompressionTarget
from verticals.core.errors import BadRequest, InvalidInput, NotFound

HOOK = "compression_target"


def split_model(spec: str) -> tuple[str, str]:
    domain, sep, name = spec.partition("/")
    if not sep or not domain or not name or "/" in name:
        raise InvalidInput(f"model must be '<domain>/<model>', got {spec!r}")
    return domain, name


def resolve_target(
    spec: str, data: Path | None = None, split: str = "val"
) -> CompressionTarget | TreeCompressionTarget:
    if data is not None and not Path(data).is_file():
        raise InvalidInput(f"data file {data} does not exist")
    if ":" in spec and "/" not in spec.partition(":")[0]:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise NotFound(f"cannot import compression target factory {spec!r}: {exc}") from exc
        target = factory(attr, data, split)
    else:
        from verticals.core.bootstrap import prepare_database
        from verticals.core.plugins import discover

        domain_name, model_name = split_model(spec)
        plugins = discover()
        domain = plugins.get(domain_name)
        hook = getattr(domain, HOOK, None)
        if hook is None:
            raise BadRequest(
                f"domain {domain_name!r} does not support compression "
                f"(it has no {HOOK}(model_name, data_file, split) hook)"
            )
        prepare_database(plugins)  # the hook may read the registry (its production model)
        target = hook(model_name, data, split)
    if target is None:
        raise NotFound(f"{spec!r} has no compressible model")
    if not isinstance(target, CompressionTarget | TreeCompressionTarget):
        raise BadRequest(f"{spec!r} did not return a CompressionTarget")
    return target
