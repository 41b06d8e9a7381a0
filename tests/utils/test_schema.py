"""utils.schema: constructor-signature checks read both spellings of optional and union annotations."""

import pytest

from wespeaker_avkd.utils.schema import ConfigError, Where, check_kwargs


class _New:
    """Annotated in the PEP 604 dialect the package uses."""

    def __init__(self, depth: int | None = None, scale: float | str = 1.0, names: list[str] | None = None) -> None:
        self.depth, self.scale, self.names = depth, scale, names


class _Old:
    """The same parameters in typing's Optional/Union spelling (third-party plugins still write it)."""

    def __init__(self, depth: int | None = None, scale: float | str = 1.0,
                 names: list | None = None) -> None:
        self.depth, self.scale, self.names = depth, scale, names


@pytest.mark.parametrize("target", [_New, _Old])
def test_optional_and_union_annotations_are_checked(target):
    where = Where("model_args", {"model_args.depth": "conf/x.yaml"})
    assert check_kwargs(target, {"depth": 3, "scale": "auto", "names": ["a"]}, where) == {
        "depth": 3, "scale": "auto", "names": ["a"]}
    assert check_kwargs(target, {"depth": None}, where) == {"depth": None}
    with pytest.raises(ConfigError, match="depth"):
        check_kwargs(target, {"depth": "three"}, where)
    with pytest.raises(ConfigError, match="scale"):
        check_kwargs(target, {"scale": [1]}, where)
    with pytest.raises(ConfigError, match="did you mean 'depth'"):
        check_kwargs(target, {"dept": 3}, where)
