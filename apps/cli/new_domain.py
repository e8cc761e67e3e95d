"""``verticals new-domain NAME``: a plugin package in the shape every domain has.

The package is rendered from ``templates/domain`` (shipped as package data): ``*.tmpl`` files go
through :class:`string.Template` (``${name}``, ``${Name}``, ``${NAME}``, ``${title}``,
``${package}``, ``${distribution}``) and lose the suffix; other files are copied as they are.
The folder ``package`` becomes the import package and ``migration_0001.py`` the first revision
of the domain's own Alembic branch. ``domains/README.md`` describes the layout.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Annotated

import typer
from rich.console import Console
from verticals.core.errors import Conflict, InvalidInput

TEMPLATE = Path(__file__).parent / "templates" / "domain"
# A URL prefix (core's rule) that is also a Python identifier: it names the import package.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

console = Console()


@dataclass(frozen=True)
class Names:
    name: str  # URL prefix, registry domain, table prefix: "card_fraud"
    Name: str  # class prefix: "CardFraud"
    NAME: str  # settings prefix part: "CARD_FRAUD"
    title: str  # shown in the dashboard's navigation
    package: str  # import package: "verticals_card_fraud"
    distribution: str  # pip name and folder: "verticals-card-fraud"

    @classmethod
    def of(cls, name: str, title: str | None = None) -> Names:
        if not NAME_PATTERN.match(name):
            raise InvalidInput(
                f"domain name {name!r} must be lower case letters, digits and '_', starting "
                "with a letter (at most 40 characters)",
                {"name": name},
            )
        words = name.split("_")
        return cls(
            name=name,
            Name="".join(w.capitalize() for w in words),
            NAME=name.upper(),
            title=title or " ".join(words).capitalize(),
            package=f"verticals_{name}",
            distribution=f"verticals-{name.replace('_', '-')}",
        )


def _target_parts(relative: Path, names: Names) -> list[str]:
    parts = list(relative.parts)
    if parts[0] == "package":
        parts[0] = names.package
    if parts[-1] == "migration_0001.py.tmpl":
        parts[-1] = f"{names.name}_0001.py.tmpl"
    if parts[-1].endswith(".tmpl"):
        parts[-1] = parts[-1].removesuffix(".tmpl")
    return parts


def render(names: Names, target: Path) -> list[Path]:
    """Write the package into ``target`` (which must not hold files yet); the files written."""
    if target.exists() and any(target.iterdir()):
        raise Conflict(f"{target} exists and is not empty; choose another --path", {})
    values = {k: v.replace('"', '\\"') if k == "title" else v for k, v in asdict(names).items()}
    written: list[Path] = []
    for source in sorted(TEMPLATE.rglob("*")):
        if source.is_dir() or "__pycache__" in source.parts or source.suffix == ".pyc":
            continue
        destination = target.joinpath(*_target_parts(source.relative_to(TEMPLATE), names))
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.name.endswith(".tmpl"):
            destination.write_text(Template(source.read_text()).substitute(values))
        else:
            destination.write_bytes(source.read_bytes())
        written.append(destination)
    return written


def new_domain(name: str, path: Path | None = None, title: str | None = None) -> Path:
    """Generate the plugin package in ``path`` (default ``./verticals-<name>``), which must be
    missing or empty; returns the folder."""
    names = Names.of(name, title)
    target = Path(path) if path is not None else Path(names.distribution)
    render(names, target)
    return target


def new_domain_command(
    name: Annotated[str, typer.Argument(help="the domain's name: URL prefix /v1/NAME, lower case")],
    path: Annotated[
        Path | None,
        typer.Option("--path", help="folder to create (default ./verticals-NAME); must be empty"),
    ] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="shown in the dashboard (default: from NAME)")
    ] = None,
) -> None:
    """Create a domain plugin package: entry point, settings, tables and migrations, service,
    router, page, commands, an example model trained on a bundled sample, and tests."""
    target = new_domain(name, path, title)
    console.print(f"created {target}")
    console.print("next, in the environment that has verticals:")
    console.print(f"  pip install -e {target}", highlight=False)
    console.print(f"  verticals domains            # lists {name}", highlight=False)
    console.print(f"  pytest {target}", highlight=False)
