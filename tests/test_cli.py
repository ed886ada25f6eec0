"""The `fac` command: reports for a person, one-line errors (exit 2) for bad input."""

import json
import subprocess
import sys

import pytest

from fac_datasets_ext.cli import main
from fac_metric.examples import example_path


def test_score_writes_report_json_and_plot(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["score", str(example_path("ifeval_heldout")), "--anchor", str(example_path("ifeval_anchor")),
                 "--out", str(out), "--quiet", "--save-profiles"])
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert 0 < result["fac"] < 1 and result["n_missing"] == len(result["missing_features"]) > 0
    assert f"FAC {result['fac']:.3f}" in printed
    report = (out / "report.md").read_text()
    assert "Missing features" in report and str(result["missing_features"][0]) in report
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a saved anchor profile is accepted in place of the anchor texts, with the same result
    again = tmp_path / "again"
    assert main(["score", str(example_path("ifeval_heldout")), "--anchor", str(out / "anchor_profile"),
                 "--out", str(again), "--quiet"]) == 0
    assert json.loads((again / "result.json").read_text())["fac"] == result["fac"]


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


def test_console_script_runs_as_a_module(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fac_datasets_ext.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "score" in proc.stdout and "train-sae" in proc.stdout
