"""Per-reading cost of a certificate correction (issue 19: at most 1 µs added per reading).

Run:  PYTHONPATH=src python benchmarks/corrections.py [--n 200000] [--repeat 15] [--points 11]

Each line is the best of ``--repeat`` runs (one process, wall clock) of a tight Python loop over
``--n`` random indications inside the calibrated range, in ns per reading, and its ratio to the
raw baseline measured in the same run:

- ``bisect + lerp (baseline)`` -- a bare ``bisect_right`` on a tuple and one linear interpolation
  of the correction, no uncertainty, no range flag: the least any table lookup costs in Python.
- ``numpy.interp per value`` -- the obvious alternative, called once per reading.
- ``Correction.apply, linear`` -- piecewise linear correction with u (points, interpolation
  term, resolution and the reading's u) and the in-range flag.
- ``... with u_reading`` -- the same, with a per-reading standard uncertainty passed.
- ``Correction.apply, polynomial deg 1/3/6`` -- a fitted polynomial with u from the coefficients'
  covariance, the residual term and the reading's u.
- ``ConformityCheck.decide (non_binary)`` -- the live verdict on the corrected value.
- ``apply_array`` rows -- the vectorised path on one numpy array of ``--n`` indications (total
  time / n), against ``numpy.interp`` on the same array.

Ratios, not absolute times, are the result: the machine is shared.
"""

from __future__ import annotations

import argparse
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence

import numpy as np

from metrology.conformity import ConformityCheck, DecisionRule, Tolerance
from metrology.correction import correction_from_points


def best_of(repeat: int, candidates: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The best of ``repeat`` rounds of each candidate (each returns its own time); the
    candidates take turns within a round, so a burst of load on the shared machine hits them
    alike instead of one row."""
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeat):
        for name, candidate in candidates.items():
            best[name] = min(best[name], candidate())
    return best


def loop(values: Sequence[float], function: Callable[[float], object]) -> Callable[[], float]:
    """A timed loop of ``function`` over ``values``: ns per value."""

    def timed() -> float:
        start = time.perf_counter()
        for value in values:
            function(value)
        return (time.perf_counter() - start) / len(values) * 1e9

    return timed


def once(function: Callable[[], object], n: int) -> Callable[[], float]:
    """A timed call of ``function`` over one array of ``n`` elements: ns per element."""

    def timed() -> float:
        start = time.perf_counter()
        function()
        return (time.perf_counter() - start) / n * 1e9

    return timed


def main() -> None:
    """Run every benchmark and print one line each."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--points", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(19)
    xs = [100.0 * i / (args.points - 1) for i in range(args.points)]
    cs = [0.05 + 0.002 * x - 4e-5 * x * x + rng.gauss(0.0, 0.004) for x in xs]
    us = [0.008] * args.points
    values = [rng.uniform(0.0, 100.0) for _ in range(args.n)]
    array = np.array(values)

    table_x, table_c, last = tuple(xs), tuple(cs), len(xs) - 2

    def baseline(x: float) -> float:
        i = bisect_right(table_x, x) - 1
        if i < 0:
            i = 0
        elif i > last:
            i = last
        x_i = table_x[i]
        return x + table_c[i] + (table_c[i + 1] - table_c[i]) * (x - x_i) / (table_x[i + 1] - x_i)

    linear = correction_from_points("ch", xs, cs, us, resolution=0.01, reading_uncertainty=0.002)
    polynomials = {
        degree: correction_from_points(
            "ch", xs, cs, us, method="polynomial", degree=degree, resolution=0.01
        )
        for degree in (1, 3, 6)
    }
    check = ConformityCheck(Tolerance(lower=-1.0, upper=101.0), DecisionRule(kind="non_binary"))

    scalar = best_of(
        args.repeat,
        {
            "bisect + lerp (baseline)": loop(values, baseline),
            "numpy.interp per value": loop(values, lambda v: np.interp(v, xs, cs)),
            "Correction.apply, linear": loop(values, linear.apply),
            "Correction.apply, linear, with u_reading": loop(
                values, lambda v: linear.apply(v, 0.003)
            ),
            **{
                f"Correction.apply, polynomial deg {degree}": loop(values, correction.apply)
                for degree, correction in polynomials.items()
            },
            "ConformityCheck.decide (non_binary)": loop(values, lambda v: check.decide(v, 0.02)),
        },
    )
    print(f"{args.n} readings, {args.points} calibration points, best of {args.repeat}")
    print(f"{'per reading, Python loop':44s} {'ns':>8s} {'ratio':>7s}")
    base = scalar["bisect + lerp (baseline)"]
    for name, ns in scalar.items():
        print(f"{name:44s} {ns:8.0f} {ns / base:7.2f}")

    vector = best_of(
        args.repeat,
        {
            "numpy.interp on the array (baseline)": once(lambda: np.interp(array, xs, cs), args.n),
            "apply_array, linear": once(lambda: linear.apply_array(array), args.n),
            "apply_array, polynomial deg 3": once(
                lambda: polynomials[3].apply_array(array), args.n
            ),
        },
    )
    print(f"{'per element, one numpy array':44s} {'ns':>8s} {'ratio':>7s}")
    base = vector["numpy.interp on the array (baseline)"]
    for name, ns in vector.items():
        print(f"{name:44s} {ns:8.1f} {ns / base:7.2f}")


if __name__ == "__main__":
    main()
