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


def _fake_distribution(root, name, entry_points, modules):
    """An installed-looking distribution on `root`: <name>-0.1.dist-info/{METADATA,entry_points.txt} + modules."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[wespeaker_avkd.plugins]\n" + "".join(
        f"{k} = {v}\n" for k, v in entry_points.items()))
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


EP_PLUGIN = '''
    import torch
    from wespeaker_avkd.registry import LOSSES

    @LOSSES.register("ep_abs_plugin")
    class EpAbs(torch.nn.Module):
        def forward(self, student, teacher):
            return (student - teacher).abs().sum()
'''


def test_entry_point_plugin_is_loaded_from_package_metadata(tmp_path, monkeypatch):
    from wespeaker_avkd.registry import ENTRY_POINT_GROUP, load_entry_point_plugins

    _fake_distribution(tmp_path, "fake_kd_dist", {"abs_loss": "ep_abs_plugin_mod"}, {"ep_abs_plugin_mod": EP_PLUGIN})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep_abs_plugin" not in LOSSES
    assert load_entry_point_plugins(ENTRY_POINT_GROUP) == ["abs_loss"]
    torch = pytest.importorskip("torch")
    assert float(LOSSES.build("ep_abs_plugin")(torch.ones(2, 3), torch.zeros(2, 3))) == 6.0
    assert load_entry_point_plugins(ENTRY_POINT_GROUP) == []  # each entry point is imported once
    sys.modules.pop("ep_abs_plugin_mod", None)


def test_entry_point_plugin_is_found_by_the_first_lookup_in_a_fresh_process(tmp_path):
    """No explicit call: a new process sees the plugin at its first registry lookup (as bin.train would)."""
    import os
    import subprocess

    _fake_distribution(tmp_path, "fake_kd_dist", {"abs_loss": "ep_abs_plugin_mod"}, {"ep_abs_plugin_mod": EP_PLUGIN})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    code = "from wespeaker_avkd.registry import LOSSES; print(LOSSES.get('ep_abs_plugin').__module__)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ep_abs_plugin_mod"


@pytest.mark.parametrize("value, modules, message", [
    ("no_such_plugin_mod_xyz", {}, "ModuleNotFoundError"),
    ("ep_broken_mod", {"ep_broken_mod": "raise RuntimeError('plugin init failed')\n"}, "plugin init failed"),
    ("ep_dup_mod", {"ep_dup_mod": '''
        from wespeaker_avkd.registry import MODELS
        MODELS.register("ResNet34")(type("Other", (), {}))
    '''}, "already registered"),
])
def test_broken_entry_point_error_names_it(tmp_path, monkeypatch, value, modules, message):
    from wespeaker_avkd.registry import PluginError, load_entry_point_plugins

    MODELS.names()  # built-ins first, as at a real first lookup
    _fake_distribution(tmp_path, "broken_dist", {"bad_one": value}, modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=rf"entry point 'bad_one' = '{value}' of distribution 'broken_dist' "
                                          rf"\(group 'wespeaker_avkd.plugins'\) failed to load: .*{message}"):
        load_entry_point_plugins()
    for module in modules:
        sys.modules.pop(module, None)
