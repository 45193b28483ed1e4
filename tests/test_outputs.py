"""Output paths checked before the work; results kept when writing fails at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from logprob_eval.errors import OutputError
from logprob_eval.reporting.outputs import prepare_dir, prepare_file, saved_elsewhere


def test_prepare_dir_creates_nested_folders(tmp_path):
    assert prepare_dir(tmp_path / "a" / "b").is_dir()


def test_prepare_dir_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match=r"--out .*f: is a file, but a directory is needed"):
        prepare_dir(tmp_path / "f")


def test_prepare_dir_names_the_flag_and_the_reason():
    with pytest.raises(OutputError, match="--llm-report-dir /proc/x/y: cannot create"):
        prepare_dir("/proc/x/y", flag="--llm-report-dir")


def test_prepare_file_refuses_a_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory, but a file is needed"):
        prepare_file(tmp_path)
    assert prepare_file(tmp_path / "new" / "s.csv") == tmp_path / "new" / "s.csv"
    assert (tmp_path / "new").is_dir()


def test_saved_elsewhere_writes_the_results_and_names_the_file(tmp_path):
    written: list[Path] = []

    def write(path: Path) -> None:
        path.write_text("example_id,label\nt1,Sports\n")
        written.append(path)

    err = saved_elsewhere(write, OSError(28, "No space left on device"), "the scores to x", "s.csv")
    (fallback,) = written
    assert fallback.read_text().startswith("example_id")
    assert str(fallback) in str(err) and err.fallback == str(fallback)
    assert "No space left on device" in str(err)
    fallback.unlink()


def test_score_keeps_the_scores_when_the_final_write_fails(tmp_path, httpserver, monkeypatch):
    import json

    import pandas as pd
    from werkzeug import Request, Response

    from logprob_eval.cli import main

    from .helpers import fake_echo_completions

    def answer(request: Request) -> Response:
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/completions").respond_with_handler(answer)
    out = tmp_path / "s.csv"
    real = pd.DataFrame.to_csv

    def full_disk(self, path, *args, **kwargs):  # the disk fills up during the run
        if Path(path) == out:
            raise OSError(28, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    code = main(
        [
            "score",
            "--model",
            f"openai-compatible:m@{httpserver.url_for('/v1')}",
            "--method",
            "exact",
            "--sample",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 2
    fallbacks = list(Path(__import__("tempfile").gettempdir()).glob("logprob-eval-*-s*.csv"))
    fallbacks = [f for f in fallbacks if "scores.csv" in f.name]
    assert fallbacks, "the scores went nowhere"
    newest = max(fallbacks, key=lambda f: f.stat().st_mtime)
    assert len(pd.read_csv(newest)) == 2 * 10
    newest.unlink()


def test_score_keeps_the_rows_finished_before_a_run_stopping_error(tmp_path, httpserver):
    import json

    import pandas as pd
    from werkzeug import Request, Response

    from logprob_eval.cli import main

    from .helpers import fake_echo_completions

    served = []

    def answer(request: Request) -> Response:
        if len(served) == 3:  # then the server stops giving log-probs: no job can succeed
            error = {"message": "logprobs are not supported", "code": "unsupported_parameter"}
            return Response(json.dumps({"error": error}), status=400)
        served.append(1)
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/completions").respond_with_handler(answer)
    out = tmp_path / "s.csv"
    code = main(
        [
            "score",
            "--model",
            f"openai-compatible:m@{httpserver.url_for('/v1')}",
            "--method",
            "exact",
            "--sample",
            "8",
            "--concurrency",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 2
    kept = pd.read_csv(out)
    assert len(kept) == 3 * 10 and set(kept["status"]) == {"exact"}
