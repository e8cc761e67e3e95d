from __future__ import annotations

from importlib.metadata import EntryPoint

from verticals.core import plugins as plugin_module


def test_installed_third_party_distribution_is_discovered():
    registry = plugin_module.discover()
    assert "echo" in registry.domains
    assert registry.domains["echo"].title == "Echo (test plugin)"
    assert registry.domains["echo"].migrations_dir().is_dir()


def test_a_broken_plugin_is_reported_and_others_still_load(monkeypatch):
    real = plugin_module.entry_points

    def with_broken(group: str):
        broken = EntryPoint(name="broken", value="no_such_module.plugin:Nope", group=group)
        return [*real(group=group), broken]

    monkeypatch.setattr(plugin_module, "entry_points", with_broken)
    registry = plugin_module.discover()
    assert "echo" in registry.domains
    assert "ModuleNotFoundError" in registry.failures["broken"]


def test_invalid_domain_objects_are_refused(monkeypatch):
    def entries(group: str):
        return [EntryPoint(name="notadomain", value="builtins:object", group=group)]

    monkeypatch.setattr(plugin_module, "entry_points", entries)
    registry = plugin_module.discover()
    assert registry.domains == {}
    assert "did not produce a verticals Domain" in registry.failures["notadomain"]


def test_test_plugins_load_only_when_asked_for():
    without = plugin_module.discover(include_test_plugins=False)
    assert "echo" not in without.domains and not without.failures
    assert {"finance", "medical"} <= set(without.domains)
    assert "echo" in plugin_module.discover(include_test_plugins=True).domains


def test_the_setting_decides_by_default(monkeypatch):
    from verticals.core.config import reset_settings

    monkeypatch.setenv("VERTICALS_LOAD_TEST_PLUGINS", "0")
    reset_settings()
    try:
        assert "echo" not in plugin_module.discover().domains
    finally:
        monkeypatch.undo()
        reset_settings()
    assert "echo" in plugin_module.discover().domains
