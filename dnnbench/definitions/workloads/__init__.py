"""The workload registry: every workload the suite can train, by name.

A workload is behaviour (base.Workload): its data, its model, its task, its target and budgets. The
engine, the planner and the views ask it; nothing outside the implementations branches on a name.
"""

from __future__ import annotations

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.definitions.workloads import plugins
from dnnbench.definitions.workloads.base import ModelChoices, Workload
from dnnbench.definitions.workloads.cubic import CUBIC
from dnnbench.definitions.workloads.idx_images import DEEP_FASHION_MNIST, FASHION_MNIST, MNIST
from dnnbench.definitions.workloads.lenet import LENET5_FASHION_MNIST, LENET5_MNIST
from dnnbench.definitions.workloads.resnet import RESNET18_CIFAR10
from dnnbench.definitions.workloads.synthetic import SYNTHETIC

BUILT_IN: tuple[Workload, ...] = (
    FASHION_MNIST,
    MNIST,
    CUBIC,
    SYNTHETIC,
    LENET5_FASHION_MNIST,
    LENET5_MNIST,
    DEEP_FASHION_MNIST,
    RESNET18_CIFAR10,
)
WORKLOADS: dict[str, Workload] = {w.name: w for w in BUILT_IN}


def register(workload: Workload) -> str:
    """Add a workload to the registry (a plug-in); it may not take a built-in workload's name."""
    if any(w.name == workload.name and w is not workload for w in BUILT_IN):
        raise BadInput(f"workload plug-in {workload.name!r} has the name of a built-in workload; rename it")
    WORKLOADS[workload.name] = workload
    return workload.name


def use(spec: str) -> str:
    """The name of the workload a user named: a registered or installed name, or a plug-in spec
    (module:attribute, path/to/file.py[:attribute]) loaded, registered and kept for child processes."""
    if not plugins.is_spec(spec):
        return get_workload(spec).name
    name = register(plugins.load(spec))
    plugins.remember(spec)
    return name


def get_workload(name: str) -> Workload:
    """A workload by name: built in, loaded earlier in this run (or by the parent process), or installed
    under the entry-point group dnnbench.workloads."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    for spec in plugins.remembered():  # a child process of a run that loaded plug-ins
        workload = plugins.load(spec)
        if workload.name not in WORKLOADS:
            register(workload)
    if name not in WORKLOADS:
        installed = plugins.from_entry_point(name)
        if installed is not None:
            WORKLOADS[name] = installed
    if name in WORKLOADS:
        return WORKLOADS[name]
    raise unknown_choice("workload", name, [*WORKLOADS, *(n for n in plugins.entry_points() if n not in WORKLOADS)])


__all__ = ["WORKLOADS", "ModelChoices", "Workload", "get_workload", "register", "use"]
