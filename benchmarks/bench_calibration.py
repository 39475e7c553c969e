"""Which calibration holds on another subject: the options compared on six directions.

For each cross-subject direction of the bundled tasks, the decoder ``calibrate`` would
choose (``training.transfer``), its out-of-fold scores (the product's stratified folds,
and time-blocked folds), and its scores on the other subject. Every option is a
temperature (one scale, no offset), so no decision changes; each is scored by ECE on the
other subject:

- likelihood: the temperature of the best out-of-fold likelihood (0.2.0);
- blocked folds: the same on 5 contiguous time blocks instead of shuffled folds;
- bound (kept): no more confident than the out-of-fold accuracy's 95 % lower bound;
- discount (LOTO): mean out-of-fold confidence ``1/K + l (CV accuracy - 1/K)``, ``l``
  chosen on the other two tasks' four directions, tested on the third task's two;
- floor (LOTO): ``T = max(likelihood T, c x spread of the out-of-fold scores)``, ``c``
  chosen the same way;
- session mixture: label-free, from the other subject's own scores (a two-Gaussian
  mixture with tied variance, ``T = variance / distance of the means``); it reads the
  whole session at once, so it only says what such a fit could give;
- session agreement (kept): label-free and causal, what a live run does
  (``decoders._session_confidence``): each epoch's temperature makes the mean confidence of
  the epochs before it equal their estimated accuracy (committee agreement, class
  balance); the bound for the first 20. Two more rows draw the committee's halves
  with other seeds, to show how much the choice of halves moves it;
- session agreement + labels (kept where the markers name the class): the same, and each
  epoch's class joins the estimate once the epoch is past (a cued session);
- oracle: the best temperature on the other subject's labels: what a temperature could
  reach at best, not a method.

Run: ``.venv/bin/python benchmarks/bench_calibration.py`` (about 2 min of one core).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from neurorvq_stream.decoders import KINDS, SessionAdapter, calibration_report
from neurorvq_stream.decoders._calibrated import (
    TemperatureScaling,
    decision_scores,
    logits_of,
    temperature_at_confidence,
)
from neurorvq_stream.decoders._metrics import negative_log_likelihood
from neurorvq_stream.decoders._session_confidence import fit_committee
from neurorvq_stream.training._decoder_set import N_FOLDS, _folds
from neurorvq_stream.training.transfer import TRANSFER_KINDS, Direction, directions

TASKS = ("checker", "face-house", "press")
#: Committees of the session rows: the one ``calibrate`` fits (seed 0) and two others.
COMMITTEE_SEEDS = (0, 1, 2)


def _with_temperature(t: float) -> TemperatureScaling:
    return TemperatureScaling.fixed(t, 2)


def _out_of_fold(d: Direction, folds: list) -> np.ndarray:
    e = d.decoder.epochs
    oof = np.zeros((len(e.y), 1))
    for train, test in folds:
        model = KINDS[d.decoder.kind].build(None).fit(e.x[train].astype(np.float64),
                                                      e.y[train])
        oof[test] = decision_scores(model, e.x[test].astype(np.float64))
    return oof


class Case:
    """One direction's scores: out of fold (both fold kinds) and on the other subject."""

    def __init__(self, d: Direction) -> None:
        e = d.decoder.epochs
        self.name, self.y = d.name, e.y
        self.stratified = _out_of_fold(d, _folds(e.y, seed=0))
        self.blocked = _out_of_fold(d, list(KFold(N_FOLDS).split(e.y)))
        self.test = decision_scores(d.decoder.model.estimator, d.epochs.x.astype(np.float64))
        self.test_y = d.epochs.y
        # the session's temperature with committees drawn from other halves (seeds)
        self.session = [SessionAdapter(fit_committee(d.decoder.model, e.x.astype(np.float64),
                                                     e.y, seed=seed),
                                       recentre=False).probabilities(d.epochs.x)
                        for seed in COMMITTEE_SEEDS]
        self.labelled = SessionAdapter(d.decoder.model, recentre=False).probabilities(
            d.epochs.x, d.epochs.y.tolist())
        self.cv = float(np.mean((self.stratified[:, 0] > 0) == self.y))

    def ece(self, t: float) -> float:
        return calibration_report(_with_temperature(t).predict_proba(self.test), self.test_y).ece


def _oracle(c: Case) -> float:
    def loss(log_t: float) -> float:
        p = _with_temperature(float(np.exp(log_t))).predict_proba(c.test)
        return negative_log_likelihood(p, c.test_y)

    spread = float(np.std(c.test))
    return spread * float(np.exp(minimize_scalar(
        lambda u: loss(u + np.log(spread)), bounds=(-7, 7), method="bounded").x))


def _mixture(c: Case) -> float:
    g = GaussianMixture(2, covariance_type="tied", random_state=0).fit(c.test)
    return float(g.covariances_.ravel()[0] / abs(np.diff(g.means_.ravel())[0]))


def _leave_one_task_out(cases: list[Case], temperature: Callable[[Case, float], float],
                        grid: np.ndarray) -> list[tuple[float, float]]:
    """(ECE, parameter) per case, the parameter chosen on the other tasks' directions."""
    out = []
    for i, c in enumerate(cases):
        others = [o for j, o in enumerate(cases) if j // 2 != i // 2]
        best = min(grid, key=lambda v: np.mean([o.ece(temperature(o, v)) for o in others]))
        out.append((c.ece(temperature(c, best)), float(best)))
    return out


def main() -> None:
    with threadpool_limits(limits=1):
        cases = [Case(d) for d in directions(TASKS, TRANSFER_KINDS)]
    rows: dict[str, list[str]] = {}

    def fixed(name: str, temperature: Callable[[Case], float]) -> None:
        rows[name] = [f"{c.ece(temperature(c)):.3f}" for c in cases]

    fixed("likelihood (0.2.0)", lambda c: TemperatureScaling().fit(
        c.stratified, c.y).likelihood_temperature_)
    fixed("likelihood, time-blocked folds", lambda c: TemperatureScaling().fit(
        c.blocked, c.y).likelihood_temperature_)
    fixed("**bound (kept: at calibration, a session's first 20 windows)**",
          lambda c: TemperatureScaling().fit(c.stratified, c.y).temperature_)
    for name, temperature, grid in (
        ("discount l (LOTO)", lambda c, v: temperature_at_confidence(
            logits_of(c.stratified), 0.5 + v * (c.cv - 0.5)), np.linspace(0.05, 1.0, 20)),
        ("floor c (LOTO)", lambda c, v: max(TemperatureScaling().fit(
            c.stratified, c.y).likelihood_temperature_, v * float(np.std(c.stratified))),
         np.exp(np.linspace(np.log(0.02), np.log(20.0), 31))),
    ):
        result = _leave_one_task_out(cases, temperature, grid)
        rows[name] = [f"{e:.3f} ({v:.2f})" for e, v in result]
    fixed("session mixture (label-free, whole session)", _mixture)
    for seed in COMMITTEE_SEEDS:
        name = "session agreement (causal" + (", kept)" if seed == 0 else f", seed {seed})")
        rows[f"**{name}**" if seed == 0 else name] = [
            f"{calibration_report(c.session[seed], c.test_y).ece:.3f}" for c in cases]
    rows["**session agreement + past epochs' labels (causal, kept for cued runs)**"] = [
        f"{calibration_report(c.labelled, c.test_y).ece:.3f}" for c in cases]
    fixed("oracle (test labels; not a method)", _oracle)
    print("ECE (10 bins) on the other subject; LOTO: parameter in brackets.\n")
    print("| option | " + " | ".join(c.name for c in cases) + " | mean | max |")
    print("|---" * (len(cases) + 3) + "|")
    for name, cells in rows.items():
        values = [float(v.split()[0]) for v in cells]
        print(f"| {name} | " + " | ".join(cells)
              + f" | {np.mean(values):.3f} | {max(values):.3f} |")


if __name__ == "__main__":
    main()
