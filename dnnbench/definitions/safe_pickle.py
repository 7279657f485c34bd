"""Unpickling data sets that arrive as pickles (MNIST's mnist.pkl.gz, CIFAR-10's python batches) without
running their code: only numpy arrays, their dtypes and plain containers may be built."""

from __future__ import annotations

import pickle

import numpy as np

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class ArraysOnly(pickle.Unpickler):
    """A pickle.Unpickler that refuses every global but numpy's array reconstruction."""

    what = "the data set's pickle"

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in {self.what}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)
