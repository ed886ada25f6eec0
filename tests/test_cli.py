"""The `fac` command: reports for a person, one-line errors (exit 2) for bad input."""

import json
import subprocess
import sys

import pytest

from fac_datasets_ext.cli import main
from fac_metric.examples import example_path


def test_score_writes_report_json_and_plot(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["score", str(example_path("brown_unseen")), "--anchor", str(example_path("ifeval_anchor")),
                 "--out", str(out), "--quiet", "--save-profiles"])
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert 0 < result["fac"] < 1 and result["n_missing"] == len(result["missing_features"]) > 0
    assert f"FAC {result['fac']:.3f}" in printed
    report = (out / "report.md").read_text()
    assert "Missing features" in report and f"### Feature {result['missing_features'][0]}" in report
    # the default: match FAC over every non-generic anchor feature, the binary share beside it
    assert result["coverage"] == "match" and result["relevance"] == "all" and 0 < result["binary_fac"] < 1
    assert f"binary FAC {result['binary_fac']:.3f}" in printed
    assert result["relevance_details"]["n_relevant"] == result["n_relevant"]
    first = result["top_missing"][0]
    assert first["summary"].startswith("peaks on") and first["anchor_spans"] and first["corpus_spans"]
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("<mark>") >= len(result["top_missing"]) and "data:image/png;base64," in page
    # a saved anchor profile holds counts, not texts: match refuses it (before encoding anything),
    # and binary coverage over the same features gives the same binary FAC
    again = tmp_path / "again"
    assert main(["score", str(example_path("brown_unseen")), "--anchor", str(out / "anchor_profile"),
                 "--out", str(again), "--quiet"]) == 2
    assert "coverage='binary'" in capsys.readouterr().err
    # (the data as its saved profile too: nothing is encoded again)
    assert main(["score", str(out / "data_profile"), "--anchor", str(out / "anchor_profile"),
                 "--out", str(again), "--quiet", "--coverage", "binary", "--relevance", "all"]) == 0
    assert json.loads((again / "result.json").read_text())["fac"] == result["binary_fac"]


@pytest.fixture
def small_files(tmp_path, anchor_texts, brown_texts):
    anchor, data = tmp_path / "anchor.jsonl", tmp_path / "data.jsonl"
    anchor.write_text("".join(json.dumps({"text": t}) + "\n" for t in anchor_texts[:80]))
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in brown_texts[:10]))
    return data, anchor


def test_judge_relevance_through_an_http_generator(small_files, fake_endpoint, tmp_path, capsys, monkeypatch):
    import fac_metric.llm
    from fac_metric.llm.answer_cache import llm_cache
    from tests.servers import completion_body

    # Judgments are cached per generator URL, and a loopback port comes round again: a fresh
    # answer store, so the 4 requests below are this run's (a reused port once answered from disk).
    monkeypatch.setattr(fac_metric.llm, "llm_cache", lambda space, cache_dir=None: llm_cache(space, tmp_path / "llm"))

    endpoint = fake_endpoint(lambda n, payload: (200, json.dumps(completion_body("Final Decision: [[Yes]]")).encode(), 0.0))
    data, anchor = small_files
    args = ["score", str(data), "--anchor", str(anchor), "--relevance", "judge", "--guideline", "toxicity",
            "--generator", endpoint.url, "--max-judged", "4", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(args) == 0
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["relevance"] == "judge" and result["n_relevant"] == 4 and len(endpoint.requests) == 4
    assert result["relevance_details"]["parse_rate"] == 1.0 and any((tmp_path / "llm").iterdir())
    assert all(row["decision"] == "Yes" for row in result["top_missing"])
    assert "relevance=judge" in capsys.readouterr().out
    assert main(args[:6] + ["--quiet"]) == 2
    assert "needs a generator" in capsys.readouterr().err
    assert main(args[:6] + ["--generator", endpoint.url, "--quiet"]) == 2
    assert "needs a guideline: one of ['helpfulness', 'instruction_following'" in capsys.readouterr().err


def test_explain_names_features_and_writes_the_missing_report(small_files, tmp_path, capsys):
    assert main(["explain", "--features", "5817,7370", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "feature 5817: peaks on" in printed and "[[" in printed
    data, anchor = small_files
    assert main(["explain", str(data), "--anchor", str(anchor), "--generator", "local", "-n", "2",
                 "--out", str(tmp_path / "x"), "--quiet"]) == 0
    result = json.loads((tmp_path / "x" / "result.json").read_text())
    assert len(result["top_missing"]) == 2 and all(row["explanation"] for row in result["top_missing"])
    assert "local:smollm2-135m-instruct" in (tmp_path / "x" / "report.html").read_text()
    assert main(["explain", "--features", "a,b"]) == 2
    assert "--features takes comma-separated integers" in capsys.readouterr().err


def test_report_escapes_what_it_quotes():
    from fac_metric.meaning.report import _html_span, _md_span

    span = {"span": "<script>alert(1)</script> | *x*", "peak": 27, "activation": 3.0}
    assert "<script>" not in _html_span(span) and "&lt;script&gt;" in _html_span(span)
    assert "\\|" in _md_span(span) and "\\*x\\*" in _md_span(span)


def test_csv_parquet_and_saved_dataset_read_the_same_texts(tmp_path):
    import datasets

    from fac_datasets_ext.io import read_texts

    ds = datasets.Dataset.from_dict({"id": [1, 2], "prompt": ["Write a poem.", "Name a color."]})
    ds.to_csv(tmp_path / "d.csv")
    ds.to_parquet(tmp_path / "d.parquet")
    ds.save_to_disk(tmp_path / "saved")
    (tmp_path / "d.txt").write_text("Write a poem.\nName a color.\n")
    for name in ("d.csv", "d.parquet", "saved", "d.txt"):
        assert read_texts(tmp_path / name) == ["Write a poem.", "Name a color."], name


@pytest.mark.parametrize(
    "content, message",
    [(b"", "is empty"), (b'{"text": "caf\xe9"}\n', "not valid UTF-8"), (b'{"other": 1}\n', "cannot tell which column")],
)
def test_bad_files_get_one_line_errors(tmp_path, capsys, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    assert main(["score", str(path), "--anchor", str(example_path("ifeval_anchor")), "--quiet",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_file_and_unknown_column(tmp_path, capsys):
    assert main(["score", str(tmp_path / "nope.jsonl"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["score", str(example_path("ifeval_anchor")), "--column", "prompt", "--quiet"]) == 2
    assert "column 'prompt' is not in the data" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["score", "spans", "train-sae"])
@pytest.mark.parametrize("value, message", [("0", "a number of processes is 1 or more"),
                                            ("-2", "a number of processes is 1 or more"), ("1.5", "invalid int value")])
def test_a_bad_number_of_processes_is_refused_before_anything_runs(tmp_path, capsys, command, value, message):
    # 0 or -2 once ran one process silently (and train-sae divided by zero)
    with pytest.raises(SystemExit) as stop:
        main([command, *([] if command == "train-sae" else [str(example_path("ifeval_anchor"))]),
              "--processes", value, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_console_script_runs_as_a_module(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fac_datasets_ext.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("score", "explain", "spans", "train-sae"))


def test_a_labelled_anchor_file_gives_the_anchor_and_its_contrast(tmp_path, capsys):
    """--anchor-label: one labelled file is the anchor (its rows of that label) and, where relevance
    is contrast, the contrast set (its other rows); wrong labels are refused before any encoding."""
    from fac_metric.examples import load_example

    rows = [{"text": t, "label": 1} for t in load_example("ifeval_anchor")[:20]]
    rows += [{"text": t, "label": 0} for t in load_example("brown_unseen")[:20]]
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in load_example("ifeval_heldout")[:4]))
    base = ["score", str(data), "--anchor", str(labelled), "--label-column", "label", "--quiet"]
    assert main([*base, "--anchor-label", "1", "--coverage", "binary", "--out", str(tmp_path / "r")]) == 0
    res = json.loads((tmp_path / "r" / "result.json").read_text())
    assert res["n_anchor_texts"] == 20 and res["relevance"] == "contrast"
    assert res["relevance_details"]["n_contrast_texts"] == 20  # the other class, not the shipped background
    assert main([*base, "--anchor-label", "2", "--out", str(tmp_path / "bad")]) == 2
    assert "selects 0 of 40 rows" in capsys.readouterr().err
    assert main([*base[:-3], "--anchor-label", "1", "--quiet", "--out", str(tmp_path / "bad")]) == 2
    assert "go together" in capsys.readouterr().err


@pytest.mark.parametrize("coverage", ["match", pytest.param("binary", marks=pytest.mark.slow)])  # CI time
def test_score_in_two_processes_equals_one_array_by_array(tmp_path, coverage):
    """`fac score --processes 2`: each process encodes every other batch; the profiles merge by
    max/sum, so counts that came from both, or from one twice, would differ from one process'."""
    import os

    import numpy as np
    from safetensors.numpy import load_file

    from fac_metric.examples import load_example

    data, anchor = tmp_path / "data.jsonl", tmp_path / "anchor.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in load_example("ifeval_heldout")[:14]))
    anchor.write_text("".join(json.dumps({"text": t}) + "\n" for t in load_example("ifeval_anchor")[:20]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    outs = {}
    for n in (1, 2):
        outs[n] = tmp_path / f"out{n}"
        cmd = [sys.executable, "-m", "fac_datasets_ext.cli", "score", str(data), "--anchor", str(anchor), "--out",
               str(outs[n]), "--quiet", "--save-profiles", "--batch-size", "4", "--coverage", coverage,
               "--processes", str(n)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("report: ") == 1  # one process reports
    for name in ("data_profile", "anchor_profile"):
        one, two = (load_file(str(outs[n] / name / "profile.safetensors")) for n in (1, 2))
        assert one.keys() == two.keys() and all(np.array_equal(one[k], two[k]) for k in one), name
    one, two = (json.loads((outs[n] / "result.json").read_text()) for n in (1, 2))
    assert one == two
