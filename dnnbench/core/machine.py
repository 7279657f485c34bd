"""Machine fingerprints: which runs may have their speed compared at all.

Two CPUs of one cloud "class" can differ 2-4x in training speed (AVX2 only on one, AVX-512 and
AVX512-BF16 on the next), and no calibration probe bridges that: torch's kernels and NumPy's BLAS gain
differently from the wider vectors. So every run records what decides its speed — the CPU (vendor,
model, family, its ISA extensions), the cores it may use, the GPU, torch with its CPU kernel level and
BLAS, NumPy with its BLAS — and speed is judged only between runs whose fingerprints agree.

A fingerprint is plain data (a dict, as stored in run.json and in each record's env); this module
compares and describes them and knows no torch (measurement/fingerprint.py captures one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# The instruction-set extensions that change what torch, oneDNN or a BLAS can run (x86 and Arm); the
# rest of /proc/cpuinfo's flags do not decide a training step's speed and would only split baselines.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)

# The fields that must agree for two runs' speed to be comparable, with what they are called in words.
FIELDS = {
    "cpu_vendor": "CPU vendor",
    "cpu_model": "CPU model",
    "cpu_family": "CPU family",
    "cpu_model_number": "CPU model number",
    "isa": "instruction sets",
    "cores": "usable cores",
    "gpu": "GPU",
    "torch": "torch",
    "torch_cpu_capability": "torch's CPU kernels",
    "torch_blas": "torch's BLAS",
    "numpy": "NumPy",
    "numpy_blas": "NumPy's BLAS",
}


# None is a value of these, not an unknown: a CPU run has no GPU, and a CUDA run on the same host is
# another machine for speed.
ALWAYS_KNOWN = ("gpu",)


def known_fields(fingerprint: Mapping[str, Any] | None) -> int:
    """How many of the fields a fingerprint knows (a rebuilt one knows fewer)."""
    return sum(fingerprint.get(k) is not None for k in FIELDS) if fingerprint else 0


def isa_of(flags: str | list[str]) -> list[str]:
    """The speed-relevant extensions among a CPU's flags (a /proc/cpuinfo flags line or a list)."""
    present = set(flags.split() if isinstance(flags, str) else flags)
    return [flag for flag in ISA_FLAGS if flag in present]


def machine_id(fingerprint: Mapping[str, Any]) -> str:
    """A short, readable, stable name: vendor, widest vector ISA, cores, and a hash of every field."""
    digest = hashlib.sha256(json.dumps({k: fingerprint.get(k) for k in FIELDS}, sort_keys=True).encode()).hexdigest()[
        :10
    ]
    isa = set(fingerprint.get("isa") or [])
    vector = next((name for name in ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "sve", "asimd") if name in isa), "")
    parts = [
        str(fingerprint.get("cpu_vendor") or "cpu").lower().replace("authentic", "").replace("genuine", ""),
        vector.replace("_", ""),
        f"{fingerprint.get('cores')}c" if fingerprint.get("cores") else "",
        "gpu" if fingerprint.get("gpu") else "",
        digest,
    ]
    return "-".join(p for p in parts if p)


def with_id(fingerprint: dict[str, Any]) -> dict[str, Any]:
    return {**fingerprint, "id": machine_id(fingerprint)}


def differences(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[str]:
    """What differs between two fingerprints, in words ("CPU family 26 vs 25"); a field one side did not
    record is not a difference (older runs lack some). A side with no fingerprint at all differs."""
    if not a or not b:
        return ["no machine fingerprint on " + ("either side" if not a and not b else "one side")]
    out = []
    for key, words in FIELDS.items():
        x, y = a.get(key), b.get(key)
        if x == y or (key not in ALWAYS_KNOWN and (x is None or y is None)):
            continue
        if key == "isa":
            only_a, only_b = sorted(set(x or ()) - set(y or ())), sorted(set(y or ()) - set(x or ()))
            sides = [f"only the baseline has {' '.join(only_a)}" if only_a else "",
                     f"only this run has {' '.join(only_b)}" if only_b else ""]  # fmt: skip
            out.append(f"{words}: {'; '.join(s for s in sides if s)}")
        else:
            out.append(f"{words} {x} vs {y}")
    return out


def describe(fingerprint: Mapping[str, Any] | None) -> str:
    """One line: 'AMD EPYC (family 25, model 17; avx2 avx512f …), 2 cores, torch 2.14.1 (AVX512, mkl)'."""
    if not fingerprint:
        return "an unknown machine (no fingerprint recorded)"
    cpu = fingerprint.get("cpu_model") or "unknown CPU"
    detail = []
    if fingerprint.get("cpu_family") is not None:
        detail.append(f"family {fingerprint['cpu_family']}, model {fingerprint.get('cpu_model_number')}")
    if fingerprint.get("isa"):
        detail.append(" ".join(fingerprint["isa"]))
    text = f"{cpu} ({'; '.join(detail)})" if detail else cpu
    if fingerprint.get("cores"):
        text += f", {fingerprint['cores']} cores"
    if fingerprint.get("gpu"):
        text += f", {fingerprint['gpu']}"
    kernels = ", ".join(str(fingerprint[k]) for k in ("torch_cpu_capability", "torch_blas") if fingerprint.get(k))
    if fingerprint.get("torch"):
        text += f", torch {fingerprint['torch']}" + (f" ({kernels})" if kernels else "")
    return text


def from_cpuinfo(machine_info: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """A fingerprint rebuilt for a run made before runs recorded one: the CPU from pytest-benchmark's
    machine_info (py-cpuinfo) in benchmark.json, torch from the run's env. What neither holds stays
    None (unknown), and `differences` does not count it."""
    cpu = machine_info.get("cpu") or {}
    fingerprint = {
        "cpu_vendor": cpu.get("vendor_id_raw"),
        "cpu_model": cpu.get("brand_raw") or env.get("cpu_model"),
        "cpu_family": cpu.get("family"),
        "cpu_model_number": cpu.get("model"),
        "isa": isa_of(cpu.get("flags") or []) or None,
        "cores": cpu.get("count") or env.get("cpu_count"),
        "gpu": env.get("gpu_name"),
        "torch": env.get("torch"),
        "torch_cpu_capability": None,
        "torch_blas": None,
        "numpy": None,
        "numpy_blas": None,
        "reconstructed_from": "pytest-benchmark's machine_info in benchmark.json",
    }
    return with_id(fingerprint)
