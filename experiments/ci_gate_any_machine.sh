#!/usr/bin/env bash
# Evidence for CI's speed gate on any machine (docs/gate.md, "CI on machines that differ"): a clean
# clone of this repository runs .ci/gate (the step .ci/run takes after `make test`) as it is, and with a
# slowdown injected from outside the product into the head only:
#   none           the clone as it is: must pass
#   slow_backward  the head runs under tests/faults/python with torch.autograd.backward 2x slower for every
#                  caller (a slower torch, where a calibration could see it)
#   slow_fetch     the same wrapper, every DataLoader batch fetch 30% slower (the loader)
#   slow_step      a commit on top of the clone makes the product's training step ~25% longer (busy wait)
# Usage: experiments/ci_gate_any_machine.sh KIND [OUT]   → OUT/KIND.log and OUT/KIND.rc (exit of .ci/gate)
set -uo pipefail
kind=${1:?kind: none, slow_backward, slow_fetch or slow_step}
out=${2:-/tmp/ci-evidence}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
clone=$(mktemp -d)/p
git clone -q "$repo" "$clone"
cd "$clone" || exit 2
export CI_RESULTS="$out/$kind-results"
case "$kind" in
    none) ;;
    slow_backward) export DNNBENCH_FAULT=slow_backward DNNBENCH_FAULT_SIZE=1.0 CI_AB_ARGS="--head-python $clone/tests/faults/python" ;;
    slow_fetch) export DNNBENCH_FAULT=slow_fetch DNNBENCH_FAULT_SIZE=0.3 CI_AB_ARGS="--head-python $clone/tests/faults/python" ;;
    slow_step)
        # the product's training step, edited by this script in a commit of its own (the product has no
        # switch for it): a busy wait of a quarter of the step's own time before its optimizer mark, as a
        # real regression (an extra sync, a slower update) would cost inside the timed step
        python3 - <<'PY'
from pathlib import Path
p = Path("dnnbench/measurement/step.py")
s = p.read_text()
assert "    optimizer.step()\n    mark(\"optimizer\")" in s
s = s.replace(
    "    optimizer.step()\n    mark(\"optimizer\")",
    "    optimizer.step()\n"
    "    _end = __import__(\"time\").perf_counter() + 0.25 * (__import__(\"time\").perf_counter() - _t0)\n"
    "    while __import__(\"time\").perf_counter() < _end:\n"
    "        pass\n"
    "    mark(\"optimizer\")",
)
s = s.replace("    with autocast():\n        total, data_loss", "    _t0 = __import__(\"time\").perf_counter()\n    with autocast():\n        total, data_loss", 1)
p.write_text(s)
PY
        git -c user.email=ci@example.invalid -c user.name=ci commit -qam "inject: the training step 25% slower"
        ;;
    *) echo "unknown kind $kind"; exit 2 ;;
esac
bash .ci/gate > "$out/$kind.log" 2>&1
echo $? > "$out/$kind.rc"
echo "$kind: exit $(cat "$out/$kind.rc") (log $out/$kind.log)"
