"""Workloads from outside the package: an entry point of the group `dnnbench.workloads`, a
`module:attribute`, or a path to a .py file (`path/to/file.py[:attribute]`).

A loaded plug-in is registered under its own `name`. Every process of a run must find it again (torchrun
ranks, A/B workers, pytest in a subprocess): `remember` puts the spec in $DNNBENCH_WORKLOADS, which child
processes inherit and `find` reads. Anything wrong with a plug-in is one BadInput naming it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from dnnbench.core.errors import BadInput
from dnnbench.definitions.workloads.base import Workload

GROUP = "dnnbench.workloads"
ENV = "DNNBENCH_WORKLOADS"  # the specs a run loaded, inherited by its child processes
SEPARATOR = ";"  # not os.pathsep: a spec holds a colon (module:attribute)
DEFAULT_ATTRIBUTE = "WORKLOAD"


def is_spec(text: str) -> bool:
    """A plug-in spec rather than a registered name: module:attribute or a .py path."""
    return ":" in text or text.endswith(".py")


def _import_module(where: str, spec: str):
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise BadInput(f"workload plug-in {spec!r}: no file {path}")
        module_spec = importlib.util.spec_from_file_location(f"dnnbench_plugin_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise BadInput(f"workload plug-in {spec!r}: {path} is not a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(where)


def _instance(obj: object, spec: str) -> Workload:
    """The plug-in's object as a Workload: an instance, or a class / factory called without arguments."""
    if inspect.isclass(obj) and issubclass(obj, Workload) and inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise BadInput(f"workload plug-in {spec!r}: {obj.__name__} does not implement {missing}")
    if callable(obj) and not isinstance(obj, Workload):
        obj = obj()
    if not isinstance(obj, Workload):
        raise BadInput(
            f"workload plug-in {spec!r} is a {type(obj).__name__}, not a dnnbench Workload "
            "(subclass dnnbench.definitions.workloads.base.Workload)"
        )
    return obj


def _parts(spec: str) -> tuple[str, str]:
    """(module or .py path, attribute) of a spec; the attribute defaults to WORKLOAD."""
    if ".py:" in spec:
        where, attribute = spec.rsplit(":", 1)
        return where, attribute
    if spec.endswith(".py"):
        return spec, DEFAULT_ATTRIBUTE
    module, _, attribute = spec.partition(":")
    return module, attribute or DEFAULT_ATTRIBUTE


def load(spec: str) -> Workload:
    """Import a plug-in by spec: module:attribute, file.py, or file.py:attribute."""
    where, attribute = _parts(spec)
    if not where:
        raise BadInput(f"workload plug-in {spec!r}: expected module:attribute or path/to/file.py[:attribute]")
    try:
        module = _import_module(where, spec)
        obj = getattr(module, attribute)
        return _instance(obj, spec)
    except BadInput:
        raise
    except AttributeError as exc:
        raise BadInput(f"workload plug-in {spec!r}: {exc}") from None
    except Exception as exc:  # the plug-in's own code failed on import or construction
        raise BadInput(f"workload plug-in {spec!r} failed to load: {type(exc).__name__}: {exc}") from None


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed plug-ins by entry-point name (the name a user types)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def from_entry_point(name: str) -> Workload | None:
    ep = entry_points().get(name)
    if ep is None:
        return None
    try:
        workload = _instance(ep.load(), f"{ep.name} = {ep.value}")
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(
            f"workload plug-in {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from None
    if workload.name != name:  # cases name the workload; the entry point is how a user finds it: one name
        raise BadInput(
            f"workload plug-in {ep.name!r} ({ep.value}) is named {workload.name!r}: name the entry point alike"
        )
    return workload


def remembered() -> list[str]:
    """The specs this run loaded, as a child process inherits them."""
    return [s for s in os.environ.get(ENV, "").split(SEPARATOR) if s]


def remember(spec: str) -> None:
    """Keep a spec for the child processes of this run (a path made absolute: they may start elsewhere)."""
    where, attribute = _parts(spec)
    if where.endswith(".py"):
        spec = f"{Path(where).resolve()}:{attribute}"
    specs = remembered()
    if spec not in specs:
        os.environ[ENV] = SEPARATOR.join([*specs, spec])
