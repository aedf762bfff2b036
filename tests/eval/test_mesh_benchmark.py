"""Mesh-accuracy metrics: Chamfer and F-score on point sets with known answers; GT thinning."""

from __future__ import annotations

import numpy as np
import pytest

from lyra.eval.mesh_benchmark import point_metrics, summary
from lyra.eval.world_cache import voxel_thin

pytest.importorskip("scipy")


def grid(n: int = 20) -> np.ndarray:
    a = np.linspace(0, 1, n)
    x, y = np.meshgrid(a, a)
    return np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1)


def test_identical_sets_score_perfectly():
    g = grid()
    m = point_metrics(g, g, [0.01, 0.1])
    assert m["chamfer"] == 0 and m["fscore"] == [1.0, 1.0]


def test_shifted_set_known_distances():
    g = grid()
    m = point_metrics(g + [0, 0, 0.05], g, [0.01, 0.1])
    assert m["accuracy"] == pytest.approx(0.05) and m["completeness"] == pytest.approx(0.05)
    assert m["fscore"] == [0.0, 1.0]


def test_half_coverage_recall_half():
    g = grid()
    half = g[g[:, 0] < 0.5]
    m = point_metrics(half, g, [0.001])
    assert m["precision"] == [1.0]
    assert m["recall"][0] == pytest.approx(len(half) / len(g))
    assert m["fscore"][0] == pytest.approx(2 * m["recall"][0] / (1 + m["recall"][0]))


def test_empty_prediction_scores_zero():
    m = point_metrics(np.zeros((0, 3)), grid(), [0.1])
    assert m["fscore"] == [0.0] and not np.isfinite(m["chamfer"])


def test_voxel_thin_keeps_one_point_per_cube():
    pts = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.5, 0.5, 0.5]])
    assert len(voxel_thin(pts, 0.1)) == 2


def test_summary_averages_worlds():
    row = lambda c: {"mesh": {"accuracy": c, "completeness": c, "chamfer": c, "chamfer_rel": c,  # noqa: E731
                              "precision": [c] * 3, "recall": [c] * 3, "fscore": [c] * 3,
                              "aligned": {"accuracy": c, "completeness": c, "chamfer": c, "chamfer_rel": c,
                                          "precision": [c] * 3, "recall": [c] * 3, "fscore": [c] * 3, "scale": 1.0}}}
    rows = [row(0.2), row(0.4)]
    for r in rows:
        r["gaussians"] = r["mesh"]
    s = summary(rows)
    assert s["mesh"]["chamfer"] == pytest.approx(0.3) and s["gaussians"]["aligned"]["fscore"][1] == pytest.approx(0.3)
