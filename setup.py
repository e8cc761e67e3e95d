"""Maps the top-level folders onto the ``verticals.*`` import namespace.

pyproject.toml holds all metadata; this file only lists the packages, because setuptools'
automatic discovery cannot add the ``verticals.`` prefix that ``package-dir`` maps.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {
    "core": "verticals.core",
    "apps": "verticals.apps",
    "domains": "verticals.domains",
    "shared_models": "verticals.shared_models",
}


def _packages() -> list[str]:
    packages: list[str] = []
    for folder, name in FOLDERS.items():
        packages.append(name)
        for sub in find_namespace_packages(where=folder, exclude=["*__pycache__*"]):
            packages.append(f"{name}.{sub}")
    return packages


setup(packages=_packages())
