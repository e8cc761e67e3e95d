from __future__ import annotations

from importlib.metadata import distribution

from verticals.core.plugins import COMMAND_VERBS, Domain

from verticals_echo import NAME


def test_the_entry_point_names_the_domain():
    (entry,) = distribution("verticals-echo").entry_points
    domain = entry.load()()
    assert isinstance(domain, Domain)
    assert entry.name == domain.name == NAME
    assert set(domain.commands()) <= set(COMMAND_VERBS)
    assert (domain.migrations_dir() / "echo_0001.py").is_file()


def test_status_reports_the_loaded_model(domain):
    status = domain.status()
    assert status.ready and status.model_version == "1"
