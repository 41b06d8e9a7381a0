"""The components a config names through a registry or a table: model, AAM head, optimizer, LR schedule.

Each is a ComponentArgs (name + constructor kwargs), checked against the constructor's signature and recorded
with the constructor's defaults filled in (sections.with_defaults): the constructor is the one place such a
default is written (e.g. the head's margin 0.2), and config.yaml lists it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wespeaker_avkd.config.optimizers import OPTIMIZERS, SCHEDULER_UNREAD, SCHEDULERS, lookup
from wespeaker_avkd.config.sections import ComponentArgs, MarginUpdate
from wespeaker_avkd.utils.schema import Where, as_mapping, check_keys, check_kwargs, suggest, with_defaults

DEFAULT_PROJECTION = "arc_margin"


def component(cls: Any, name: str, args: Any, where_args: Where, what: str, supplied: Sequence[str] = (),
              skip: Sequence[str] = ()) -> ComponentArgs:
    """ComponentArgs of `cls` named `name`: `args` checked against its constructor, its defaults filled in."""
    checked = check_kwargs(cls, as_mapping(args, where_args), where_args, supplied=supplied, what=what)
    return ComponentArgs(name, with_defaults(cls, checked, supplied, skip))


def registry_component(registry: Any, name: Any, args: Any, where_name: Where, where_args: Where,
                       supplied: Sequence[str] = (), skip: Sequence[str] = ()) -> ComponentArgs:
    """Look `name` up in `registry`, then `component` of its class."""
    if not isinstance(name, str) or name not in registry:
        raise where_name.error(f"unknown {registry.kind} {name!r}{suggest(name, registry.names())} (registered: "
                               f"{', '.join(registry.names())}; plugins register with @"
                               f"{registry.kind.upper()}S.register and are listed under 'plugins')")
    return component(registry.get(name), name, args, where_args, f"{registry.kind} {name}", supplied, skip)


def parse_model_and_head(cfg: Mapping[str, Any], top: Where, modality: str,
                         plugins: Sequence[str]) -> tuple[ComponentArgs, ComponentArgs, MarginUpdate | None]:
    """(model, AAM head, margin_update or None) of a config, checked against the registries (plugins imported).
    With margin_update the head's margin is the schedule's (not read, so not recorded)."""
    from wespeaker_avkd.kinds import kind_of
    from wespeaker_avkd.registry import PROJECTIONS, import_plugins

    import_plugins(plugins)
    model = registry_component(kind_of(modality).encoder_registry, cfg.get("model"), cfg.get("model_args"),
                               top.key("model"), top.key("model_args"))
    proj_args = as_mapping(cfg.get("projection_args"), top.key("projection_args"))
    margin = as_mapping(cfg.get("margin_update"), top.key("margin_update"))
    if margin and "margin" in proj_args:
        raise top.key("projection_args.margin").error("is not read when margin_update is given (the schedule "
                                                      "sets the margin): set margin_update's margins instead")
    project_type = proj_args.pop("project_type", DEFAULT_PROJECTION)
    projection = registry_component(PROJECTIONS, project_type, proj_args, top.key("projection_args.project_type"),
                                    top.key("projection_args"), supplied=("embed_dim", "num_class"),
                                    skip=("margin",) if margin else ())
    return model, projection, MarginUpdate.from_dict(margin, top.key("margin_update")) if margin else None


def parse_optimizer(name: str, args: Any, top: Where) -> ComponentArgs:
    """The optimizer OPTIMIZERS[name] with `optimizer_args` (no lr: the schedule sets it)."""
    where = top.key("optimizer_args")
    args = as_mapping(args, where)
    if "lr" in args:
        raise where.key("lr").error("is not read: the schedule sets the learning rate every iteration "
                                    "(scheduler_args.initial_lr / final_lr)")
    cls = lookup(OPTIMIZERS, "optimizer", name, top.key("optimizer"))
    return component(cls, name, args, where, name, supplied=("params", "lr"))


def parse_scheduler(name: str, args: Any, top: Where) -> ComponentArgs:
    """The schedule SCHEDULERS[name] with `scheduler_args` (keys it accepts but does not read refused)."""
    where = top.key("scheduler_args")
    cls = lookup(SCHEDULERS, "scheduler", name, top.key("scheduler"))
    args = as_mapping(args, where)
    check_keys(args, list(args), where, SCHEDULER_UNREAD.get(name, {}), refused_intro=f"scheduler_args not read by "
                                                                                     f"{name}")
    return component(cls, name, args, where, cls.__name__, supplied=("optimizer", "num_epochs", "epoch_iter"))
