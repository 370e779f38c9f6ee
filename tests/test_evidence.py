"""How results are stated: paired intervals by hand, MDE, degenerate flags, mechanism checks on real runs."""

import math

import pytest

from cmi_toolkit.evidence.report import summarise
from cmi_toolkit.evidence.statistics import min_detectable_effect, paired_comparison, verdict
from cmi_toolkit.runs.checks import degenerate_flags
from cmi_toolkit.runs.execute import execute
from cmi_toolkit.runs.store import ResultStore

from .test_training import _cfg, _easy_sst2

T_975_DF3 = 3.182446305284263  # Student t, 97.5 % quantile, 3 degrees of freedom (tables)


def test_paired_interval_matches_a_hand_computation():
    method, baseline = [0.81, 0.83, 0.80, 0.86], [0.80, 0.81, 0.77, 0.80]  # differences 1, 2, 3, 6 points
    out = paired_comparison(method, baseline)
    d = [0.01, 0.02, 0.03, 0.06]
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    half = T_975_DF3 * sd / 2
    assert out["mean"] == pytest.approx(0.03) and out["sd"] == pytest.approx(sd)
    assert (out["low"], out["high"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
    t_stat = mean / (sd / 2)
    assert t_stat == pytest.approx(2.7775, abs=1e-3)
    assert out["p"] == pytest.approx(0.0690, abs=5e-4)  # two-sided, df 3
    assert out["won"] == 4 and out["n"] == 4
    assert out["verdict"] == "no difference detected"  # every seed won, the interval still includes 0


def test_verdict_words_follow_the_interval():
    assert verdict(0.1, 0.5) == "better" and verdict(-0.5, -0.1) == "worse"
    assert verdict(-0.1, 0.5) == "no difference detected"
    assert paired_comparison([1.0, 1.1, 0.9], [0, 0, 0])["verdict"] == "better"
    assert paired_comparison([-1.0, -1.1, -0.9], [0, 0, 0])["verdict"] == "worse"
    assert paired_comparison([0.5], [0.4])["verdict"] == "too few seeds"


def test_min_detectable_effect():
    from scipy.stats import nct, t

    sd, n = 0.02, 5
    mde = min_detectable_effect(sd, n)
    tc = t.ppf(0.975, n - 1)
    nc = mde * math.sqrt(n) / sd
    assert 1 - nct.cdf(tc, n - 1, nc) + nct.cdf(-tc, n - 1, nc) == pytest.approx(0.8, abs=1e-6)
    assert min_detectable_effect(sd, 20) < mde  # more seeds detect smaller effects
    assert min_detectable_effect(1.0, 400) == pytest.approx((1.959964 + 0.841621) / 20, rel=0.01)  # normal limit


def test_degenerate_flags():
    assert degenerate_flags(math.log(2) * 1.01, 2, 0.6, 0.7) == ["loss_at_chance"]
    assert degenerate_flags(0.3, 2, 0.96, 0.9) == ["one_class"]
    assert degenerate_flags(0.3, 3, 0.5, 0.36) == ["near_uniform"]
    assert degenerate_flags(0.3, 2, 0.6, 0.8) == []


def _record(method, seed, score, flags=()):
    return {"params": {"task": "sst2", "method": method, "seed": seed}, "headline_metric": "accuracy",
            "metrics": {"accuracy": score, "feature_cmi": 0.1, "feature_ncmi": 0.01},
            "checks": {"flags": list(flags)}, "majority_score": 0.5, "provenance": {}}


def test_flagged_runs_are_never_counted():
    records = [_record("ce", s, 0.80) for s in range(3)]
    records += [_record("cmi", 0, 0.82), _record("cmi", 1, 0.83), _record("cmi", 2, 0.99, ["one_class"])]
    rows = {r["method"]: r for r in summarise(records)}
    assert rows["cmi"]["used"] == 2 and rows["cmi"]["seeds"] == 3
    assert rows["cmi"]["mean"] == pytest.approx(0.825)  # the flagged 0.99 is not in the mean ...
    assert rows["cmi"]["seed_wins"] == "2/2"  # ... nor in the paired comparison
    assert "seed 2: one_class" in rows["cmi"]["flagged"]


def test_collapsed_run_is_flagged(tmp_path, tiny_model_dir):
    """A run that cannot learn (learning rate 1e-9) ends at ln 2 and is flagged in its record."""
    glue = _easy_sst2(tmp_path / "glue", n=32)
    rec = execute(_cfg(tiny_model_dir, method="ce", learning_rate=1e-9, epochs=1), ResultStore(tmp_path / "r"),
                  glue_dir=str(glue), progress=False)
    assert "loss_at_chance" in rec["checks"]["flags"]
    assert rec["checks"]["final_train_ce"] == pytest.approx(math.log(2), rel=0.02)


def _noisy_sst2(root, n=48):
    """The one-word SST-2 fixture with every fourth label flipped: learnable, but never saturated."""
    folder = root / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    words = {0: ["awful", "bad", "boring"], 1: ["great", "good", "lovely"]}
    for name, count in (("train.tsv", n), ("dev.tsv", 16)):
        rows = [f"the film was {words[i % 2][i % 3]} indeed\t{(i % 2) if i % 4 else 1 - i % 2}" for i in range(count)]
        (folder / name).write_text("\n".join(["sentence\tlabel", *rows]) + "\n")
    return root


def test_maximiser_raises_cmi_and_the_check_says_so(tmp_path, tiny_model_dir):
    """CE - lambda*CMI ends with higher CMI than its CE twin (same data, seed, space, T); the record says passed."""
    glue = _noisy_sst2(tmp_path / "glue")
    store = ResultStore(tmp_path / "r")
    common = dict(epochs=10, space="feature", temperature=1.0, cmi_weight=0.3, centroid_mode="epoch")
    up = execute(_cfg(tiny_model_dir, method="mcmi", **common), store, glue_dir=str(glue), progress=False)
    check = up["checks"]["mechanism"]
    assert check["expected"] == "higher" and check["space"] == "feature" and check["temperature"] == 1.0
    assert check["cmi"] > check["ce_twin_cmi"] and check["passed"] is True
    assert up["checks"]["flags"] == []  # it learned: not a collapsed teacher
    down = execute(_cfg(tiny_model_dir, method="cmi", **common), store, glue_dir=str(glue), progress=False)
    assert down["checks"]["mechanism"]["ce_twin_cmi"] == pytest.approx(check["ce_twin_cmi"])  # one twin
    assert down["checks"]["mechanism"]["passed"] is (down["checks"]["mechanism"]["cmi"] < check["ce_twin_cmi"])
    rows = {r["method"]: r for r in summarise(store.all_records())}
    assert rows["mcmi"]["mechanism"] == "1/1"
    assert len([r for r in store.all_records() if r["params"]["method"] == "ce"]) == 1


def test_mechanism_failure_is_marked():
    from cmi_toolkit.runs.checks import mechanism_check

    assert mechanism_check("cmi", 0.5, 0.4, "feature", 0.1)["passed"] is False
    assert mechanism_check("mcmi", 0.3, 0.4, "output", 1.0)["passed"] is False
    assert mechanism_check("ce", 0.3, 0.4, "feature", 0.1)["passed"] is None


def test_mechanism_is_unchecked_not_failed_when_the_twin_model_is_gone(tmp_path, tiny_model_dir):
    import shutil

    glue = _easy_sst2(tmp_path / "glue", n=16)
    store = ResultStore(tmp_path / "r")
    ce = execute(_cfg(tiny_model_dir, method="ce", epochs=1), store, glue_dir=str(glue), progress=False, keep_model=False)
    assert not (store.root / "models" / ce["key"]).exists()
    shutil.rmtree(store.root / "models", ignore_errors=True)
    ce["metrics"]["accuracy"] += 0.5  # retrained, the twin no longer matches its record: its model is not used
    store.save(ce["key"], ce)
    rec = execute(_cfg(tiny_model_dir, method="cmi", epochs=1), store, glue_dir=str(glue), progress=False)
    assert rec["checks"]["mechanism"]["passed"] is None and "saved model" in rec["checks"]["mechanism"]["unchecked"]


def test_the_summary_figure_draws_no_empty_column_and_one_colour_per_method():
    """A task whose every run is flagged (WNLI in cpu_verdict) is named in the title, not drawn as an empty column;
    each method keeps its colour of METHOD_COLOURS, so no two methods of the figure share one."""
    from cmi_toolkit.evidence.report import METHOD_LABELS, summary_figure
    from cmi_toolkit.plotting import METHOD_COLOURS

    def row(task, method, mean):
        return {"task": task, "method": method, "mean": mean, "std": 0.01, "used": 3, "majority": 0.5}

    rows = [row("sst2", m, 0.8) for m in METHOD_LABELS] + [row("wnli", "ce", None), row("wnli", "cmi", None)]
    fig = summary_figure(rows, title="t")
    assert list(fig.layout.xaxis.ticktext) == ["sst2"] and "not drawn: wnli" in fig.layout.title.text
    colours = {tr.name: tr.marker.color for tr in fig.data if tr.name in METHOD_LABELS.values()}
    assert colours == {METHOD_LABELS[m]: METHOD_COLOURS[m] for m in METHOD_LABELS}
    assert len(set(colours.values())) == len(colours)
