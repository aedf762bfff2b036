"""``lyra eval mesh``: a run split into parts (``--first``) and joined (``--merge``) gives the rows and means of
the parts; the report is written after every world; the scene cache is reused only for the same settings and
weights; bad merges fail in one line.

Micro world preset (9 frames, 48 × 80), exact depth, one sampler step, the shipped tiny models.
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from lyra.cli import main

pytest.importorskip("trimesh")
pytest.importorskip("skimage")
pytest.importorskip("scipy")

ARGS = ["eval", "mesh", "--worlds", "1", "--steps", "1", "--world-preset", "micro", "--depth", "exact", "--device",
        "cpu"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Test worlds 0 and 1 as two parts sharing one cache: (cache, [part folders])."""
    root = tmp_path_factory.mktemp("mesh_eval")
    cache = root / "cache"
    outs = []
    for k in range(2):
        out = root / f"part_{k}"
        assert main([*ARGS, "--first", str(k), "--cache", str(cache), "--out", str(out)]) == 0
        outs.append(out)
    return cache, outs


def _load(folder):
    return json.loads((folder / "mesh_eval.json").read_text())


def test_parts_hold_their_worlds(parts):
    _, outs = parts
    for k, out in enumerate(outs):
        assert sorted(p.name for p in out.iterdir()) == ["mesh_eval.json", "mesh_eval.md"]
        res = _load(out)
        s = res["setting"]
        assert (s["seeds"], s["planned"], s["missing"], s["worlds"]) == ([k], [k], [], 1)
        (row,) = res["worlds"]
        assert row["seed"] == k and row["mesh_stats"]["visual_faces"] > 0
        for what in ("mesh", "gaussians"):
            assert len(row[what]["fscore"]) == 3 and all(0.0 <= f <= 1.0 for f in row[what]["fscore"])
            assert res["mean"][what]["chamfer"] == pytest.approx(row[what]["chamfer"])  # one world: its mean
        assert "--first 1" in s["command"] if k else "--first" not in s["command"]


def test_merge_joins_the_parts(parts, tmp_path, capsys):
    _, outs = parts
    joined = tmp_path / "joined"
    assert main(["eval", "mesh", "--merge", str(outs[1]), str(outs[0]), "--out", str(joined)]) == 0
    got, a, b = _load(joined), _load(outs[0]), _load(outs[1])
    s = got["setting"]
    assert (s["seeds"], s["planned"], s["missing"], s["parts"]) == ([0, 1], [0, 1], [], 2)
    assert got["worlds"] == [a["worlds"][0], b["worlds"][0]]  # rows as the parts wrote them, in seed order
    for what in ("mesh", "gaussians"):
        vals = [r[what]["fscore"][2] for r in got["worlds"]]
        assert got["mean"][what]["fscore"][2] == pytest.approx(sum(vals) / 2)
        c = [r[what]["chamfer"] for r in got["worlds"] if math.isfinite(r[what]["chamfer"])]
        if c:
            assert got["mean"][what]["chamfer"] == pytest.approx(sum(c) / len(c))
    assert "joined with --merge" in s["command"] and "--worlds 2" in s["command"]
    md = (joined / "mesh_eval.md").read_text()
    assert md.startswith("# Mesh accuracy — 2 held-out test worlds\n") and "test worlds 0–1" in md
    assert "Joined 2 parts (2 of 2 planned worlds)" in capsys.readouterr().out


def test_merge_of_an_unfinished_part_names_the_missing_worlds(parts, tmp_path):
    from lyra.eval.mesh_benchmark import markdown_report, merge_results

    _, outs = parts
    a = _load(outs[0])
    cut = copy.deepcopy(a)  # a part planned for worlds 1-2 that was stopped before finishing any
    cut["setting"].update(planned=[1, 2], seeds=[], worlds=0)
    cut["worlds"] = []
    merged = merge_results([a, cut])
    assert merged["setting"]["planned"] == [0, 1, 2] and merged["setting"]["missing"] == [1, 2]
    assert "(of 3 planned; not evaluated: 1, 2)" in markdown_report(merged).splitlines()[0]


def test_bad_merges_fail_in_one_line(parts, tmp_path, capsys):
    _, outs = parts
    joined = tmp_path / "j"
    other = tmp_path / "other"
    other.mkdir()
    res = _load(outs[1])
    res["setting"]["steps"] = 2
    (other / "mesh_eval.json").write_text(json.dumps(res))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mesh_eval.json").write_text("[1, 2]")
    for merge, msg in (([outs[0], outs[0]], "overlap"), ([outs[0], other], "differ in steps"),
                       ([tmp_path / "none"], "no mesh_eval.json"), ([bad], "not a lyra eval mesh report")):
        code = main(["eval", "mesh", "--merge", *map(str, merge), "--out", str(joined)])
        err = capsys.readouterr().err.strip()
        assert code != 0 and len(err.splitlines()) == 1 and msg in err, err
    assert not joined.exists()  # nothing written


def test_cache_reused_only_for_the_same_settings(parts, tmp_path):
    cache, _ = parts
    meta = cache / "world_0" / "world.json"
    before = json.loads(meta.read_text())
    assert before["steps"] == 1 and before["depth"] == "exact" and len(before["weights_key"]) == 16
    stamp = meta.stat().st_mtime_ns
    assert main([*ARGS, "--cache", str(cache), "--out", str(tmp_path / "again")]) == 0
    assert meta.stat().st_mtime_ns == stamp  # same settings, same weights: the scene is reused
    assert _load(tmp_path / "again")["worlds"][0]["mesh"] == _load(parts[1][0])["worlds"][0]["mesh"]
    assert main([*ARGS, "--steps", "2", "--cache", str(cache), "--out", str(tmp_path / "two")]) == 0
    assert json.loads(meta.read_text())["steps"] == 2  # another setting: generated again, not served stale


def test_bad_options_fail_before_anything_is_written(tmp_path, capsys):
    for extra, msg in ((["--first", "-1"], "--first"), (["--first", "100000"], "test split holds"),
                       (["--worlds", "0"], "--worlds")):
        code = main([*ARGS, *extra, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert code != 0 and len(err.splitlines()) == 1 and msg in err, err
    assert not (tmp_path / "c").exists() and not (tmp_path / "o").exists()
