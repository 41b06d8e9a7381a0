"""The name -> class registries: decorators, build, errors, third-party plugins."""
import sys
import textwrap

import pytest

from wespeaker_avkd.registry import LOSSES, MODELS, Registry, RegistryError, import_plugins


def test_register_build_and_names():
    reg = Registry("widget")

    @reg.register("Square")
    class Square:
        def __init__(self, side: int = 1) -> None:
            self.side = side

    assert reg.names() == ["Square"]
    assert "Square" in reg
    assert reg.build("Square", side=3).side == 3
    assert reg.get("Square") is Square


def test_unknown_name_lists_known_ones():
    reg = Registry("widget")
    reg.register("a")(type("A", (), {}))
    reg.register("b")(type("B", (), {}))
    with pytest.raises(RegistryError, match=r"unknown widget 'c'; known widgets: a, b"):
        reg.build("c")


def test_duplicate_name_from_another_class_is_refused():
    reg = Registry("widget")
    reg.register("x")(type("A", (), {}))
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("x")(type("B", (), {}))


def test_bad_kwargs_name_the_component():
    reg = Registry("widget")
    reg.register("x")(type("A", (), {"__init__": lambda self, a: None}))
    with pytest.raises(TypeError, match=r"building widget 'x' with arguments \['b'\]"):
        reg.build("x", b=1)


def test_third_party_plugin_registers_without_touching_the_package(tmp_path, monkeypatch):
    plugin = tmp_path / "my_kd_plugin.py"
    plugin.write_text(textwrap.dedent('''
        import torch
        from wespeaker_avkd.registry import LOSSES

        @LOSSES.register("l1_plugin")
        class L1(torch.nn.Module):
            def forward(self, student, teacher):
                return (student - teacher).abs().mean()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "l1_plugin" not in LOSSES
    import_plugins(["my_kd_plugin"])
    torch = pytest.importorskip("torch")
    loss = LOSSES.build("l1_plugin")
    assert float(loss(torch.ones(2, 3), torch.zeros(2, 3))) == 1.0
    sys.modules.pop("my_kd_plugin", None)


def test_missing_plugin_module_names_the_config_key():
    with pytest.raises(ImportError, match=r"'plugins': cannot import plugin module 'no_such_mod_xyz'"):
        import_plugins(["no_such_mod_xyz"])
