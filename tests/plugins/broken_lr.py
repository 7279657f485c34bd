"""Test-side fault injection: a broken learning-rate default (1000x too small), so that cases using
their optimizer's default learning rate learn far less. Loaded with `-p tests.plugins.broken_lr`."""

from dnnbench.measurement import resolve

_original_default_lr = resolve.default_lr


def pytest_configure(config) -> None:
    resolve.default_lr = lambda name: _original_default_lr(name) / 1000
