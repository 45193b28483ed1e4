"""``logprob-eval``: the library's experiments without pytest.

Commands: ``init`` (a starter eval suite from your data), ``score`` (scores table),
``stability`` (grid -> report), ``thresholds`` (scores table -> sweep -> report),
``compare`` (two runs), ``generate`` (synthetic data), ``serve`` (local model).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LogprobEvalError
from .reporting.retention import keep_count

__all__ = ["build_parser", "main"]


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer; pass 1 or more")
    return n


def _csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _add_columns(p: argparse.ArgumentParser, *, labels: bool = True) -> None:
    """The dataset's column options (``score``, ``stability``, ``init``; ``compare`` reads
    texts and ids only)."""
    p.add_argument("--text-column", default="text", help="column of the texts (default: text)")
    if labels:
        p.add_argument(
            "--labels-column",
            default=None,
            help="column of the labels (default: the one named labels/label/topics/topic/"
            "categories/category/classes/class, else the only column besides the text)",
        )
    p.add_argument(
        "--id-column",
        default="id",
        help="column of the ids (default: id if there, else pandas' index column, else the "
        "row number); a column named here must exist",
    )


def _add_grid(p: argparse.ArgumentParser, *, many_models: bool) -> None:
    p.add_argument(
        "--model",
        action="append" if many_models else "store",
        required=True,
        help="provider:model, e.g. local:gemma-3-270m, openai:gpt-4.1-mini, "
        "ollama:llama3.2, openai-compatible:NAME@http://host:port/v1"
        + (" (repeat for several)" if many_models else ""),
    )
    p.add_argument(
        "--method",
        choices=["exact", "generation", "forced"],
        default=None,
        help="exact (teacher-forced, echo), generation (top-k) or forced (one-token "
        "completions per label prefix, for servers without echo); default: the backend's own",
    )
    p.add_argument(
        "--templates",
        type=_csv_list,
        default=["simple"],
        help="comma-separated template names (default: simple); built-in: simple,"
        " instruction, question, cot, json, role, task, constrained, natural",
    )
    p.add_argument(
        "--label-sets",
        type=_csv_list,
        default=None,
        help="comma-separated label phrasings, each phrasing every label of the dataset "
        "(default: those of --config, else 'normal' for the study's topics, else 'as-is': "
        "each label as itself); built-in for the topics: simple, normal, verbose",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file adding templates/label sets ([templates], [label_sets.X])",
    )
    p.add_argument(
        "--data",
        default="topics",
        help="dataset CSV/TSV/JSONL/Parquet path, or 'topics' (the shipped one; default)",
    )
    _add_columns(p)
    p.add_argument("--sample", type=int, default=None, help="score N texts drawn by --seed")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: 4)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="persistent response cache: a rerun sends no request",
    )
    p.add_argument(
        "--top-logprobs",
        type=int,
        default=20,
        help="alternatives per position, generation method (default: 20)",
    )
    p.add_argument(
        "--max-tokens", type=int, default=16, help="answer length, generation method (default: 16)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for one answer (default: 60); slow servers need more",
    )
    p.add_argument(
        "--first-answer-only",
        action="store_true",
        help="generation: score labels only where the answer starts (no "
        "multi-label starts after separators)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    # -- batch (issue 13) --
    p.add_argument(
        "--batch",
        action="store_true",
        help="OpenAI models: send the grid through the Batch API (half price, results within "
        "24 h); the batch id is saved under --cache-dir (default .logprob-eval-cache) and a "
        "killed run resumes it",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=30.0,
        help="seconds between batch status checks (default: 30)",
    )


def _backend(args: argparse.Namespace, spec: str) -> Any:
    from .backends import get_backend
    from .cache import ResponseCache

    opts: dict[str, Any] = {}
    if args.method:
        opts["method"] = args.method
    if args.batch and not args.cache_dir:
        args.cache_dir = Path(".logprob-eval-cache")  # a batch needs somewhere to save its id
    if args.cache_dir:
        opts["cache"] = ResponseCache(args.cache_dir)
    if getattr(args, "timeout", None):
        opts["timeout"] = args.timeout
    if spec.startswith(("openai", "ollama", "local")):
        opts["top_logprobs"] = args.top_logprobs
        opts["max_tokens"] = args.max_tokens
        if args.first_answer_only:
            opts["match_options"] = {"multi_label": False}
    return get_backend(spec, **opts)


def _scorer(args: argparse.Namespace) -> Any:
    """``score_jobs``, or its Batch API counterpart with ``--batch``."""
    from .backends.jobs import score_jobs

    if not args.batch:
        return score_jobs
    from .backends.openai_batch import score_jobs_batch

    def batch(backend: Any, jobs: Any, **kwargs: Any) -> Any:
        return score_jobs_batch(
            backend, jobs, cache=backend.cache, poll_interval=args.poll_interval, **kwargs
        )

    return batch


def _grid(args: argparse.Namespace) -> tuple[Any, list[Any], list[Any]]:
    from .data.datasets import load_dataset
    from .data.prompts import get_template, load_prompt_config
    from .errors import DatasetError

    pc = load_prompt_config(args.config) if args.config else None
    templates = [get_template(t, pc.templates if pc else None) for t in args.templates]
    ds = load_dataset(
        args.data,
        text_column=args.text_column,
        labels_column=args.labels_column,
        id_column=args.id_column,
    )
    print(
        f"dataset {ds.source}: {len(ds)} texts, labels from {ds.labels_from}: "
        f"{', '.join(ds.label_names)}",
        file=sys.stderr,
    )
    label_sets = _label_sets(args, pc.label_sets if pc else None, ds.label_names)
    for ls in label_sets:  # the suite checks its label sets the same way
        ls.check_covers(
            ds.label_names,
            source=ds.source,
            fix="phrase every label in the --config file ([label_sets.NAME] label = "
            '"phrase") and pass --label-sets NAME, or leave --label-sets out to use each '
            "label as itself",
        )
    if args.sample is not None:
        if not 1 <= args.sample <= len(ds):
            raise DatasetError(
                f"--sample {args.sample}: {ds.source} has {len(ds)} texts; pass a number "
                f"between 1 and {len(ds)}, or leave --sample out to score them all"
            )
        ds = ds.sample(args.sample, seed=args.seed)
    return ds, templates, label_sets


def _label_sets(args: argparse.Namespace, declared: Any, labels: Sequence[str]) -> list[Any]:
    """``--label-sets``, or by default: the sets ``--config`` adds, else ``normal`` where it
    phrases the dataset's labels (the study's topics), else each label as itself."""
    from .data.prompts import LABEL_SETS, as_is, get_label_set

    if args.label_sets is not None:
        return [get_label_set(x, declared) for x in args.label_sets]
    own = [ls for name, ls in (declared or {}).items() if name not in LABEL_SETS]
    if own:
        return own
    if set(LABEL_SETS["normal"].canonical) == set(labels):
        return [LABEL_SETS["normal"]]
    return [as_is(labels)]


def _failure_summary(rows: Sequence[Any]) -> int:
    """Print the causes of failed rows to stderr; 1 when every row failed, else 0."""
    from collections import Counter

    def request(r: Any) -> tuple[str, ...]:
        return (r.model, r.template, r.label_set, r.example_id)

    failed = {request(r): r.error or "failed" for r in rows if r.status == "error"}
    if not failed:
        return 0
    every = len(failed) == len({request(r) for r in rows})
    head = "error: every request failed" if every else f"warning: {len(failed)} requests failed"
    print(f"logprob-eval: {head}; causes:", file=sys.stderr)
    for cause, n in Counter(failed.values()).most_common(3):
        print(f"  {n} request{'s' if n > 1 else ''}: {cause}", file=sys.stderr)
    return 1 if every else 0


def _score_jobs_keeping(backend: Any, jobs: Any, args: argparse.Namespace, partial: Path) -> Any:
    """``score_jobs``; if the run stops on an error, the rows finished so far go to
    ``partial`` and the error says so."""
    done: dict[int, list[Any]] = {}
    try:
        return _scorer(args)(
            backend,
            jobs,
            concurrency=args.concurrency,
            progress=not args.no_progress,
            on_result=done.__setitem__,
        )
    except LogprobEvalError as exc:
        _keep_finished(exc, [row for i in sorted(done) for row in done[i]], partial)
        raise


def _keep_finished(exc: LogprobEvalError, rows: Sequence[Any], path: Path) -> None:
    """A run stopped on ``exc``: write the rows it finished to ``path`` (if any row was
    scored) and say so in the error's message."""
    from .experiments.table import to_frame

    if all(r.status == "error" for r in rows):
        return  # nothing was scored: there is nothing to keep
    to_frame(rows).to_csv(path, index=False)
    exc.args = (
        f"{exc} (the run stopped; the {len(rows)} rows finished before were written to {path})",
        *exc.args[1:],
    )


def _score(args: argparse.Namespace) -> int:
    from .backends.jobs import make_jobs
    from .experiments.table import to_frame
    from .reporting.outputs import prepare_file, saved_elsewhere

    out = Path(args.out)
    if out.suffix != ".csv":
        out = out / "scores.csv"
    prepare_file(out)  # before any request
    ds, templates, label_sets = _grid(args)
    with _backend(args, args.model) as backend:
        rows = _score_jobs_keeping(backend, make_jobs(ds, templates, label_sets), args, out)
    frame = to_frame(rows)
    try:
        frame.to_csv(out, index=False)
    except OSError as exc:
        raise saved_elsewhere(
            lambda p: frame.to_csv(p, index=False), exc, f"the scores to {out}", "scores.csv"
        ) from None
    errors = sum(r.status == "error" for r in rows)
    print(f"wrote {len(rows)} rows ({errors} failed) to {out}")
    return _failure_summary(rows)


def _threshold_lines(t: dict[str, Any]) -> list[str]:
    """The thresholds a sweep chose, overall and per label, each with its F1."""
    if not t or t.get("best_threshold") is None or math.isnan(t["best_threshold"]):
        return ["  no threshold chosen: " + ("; ".join(t.get("notes", [])) or "nothing swept")]
    per_label = t.get("per_label_thresholds", {})
    width = max([len(str(lb)) for lb in per_label] + [len("overall")])
    lines = [
        f"  thresholds on {t.get('score', 'logprob')} ({t.get('bounds', 'optimistic')} bounds; "
        "predict every label scoring at or above):",
        f"    {'overall':<{width}}  {t['best_threshold']:9.4f}  F1 {t['best_f1']:.3f} (micro)",
    ]
    for lb, thr in per_label.items():
        f1 = t.get("per_label_f1", {}).get(lb, math.nan)
        shown = "     none" if thr is None or math.isnan(thr) else f"{thr:9.4f}"
        lines.append(f"    {lb:<{width}}  {shown}  F1 {f1:.3f}")
    return lines


def _report(
    df: Any,
    args: argparse.Namespace,
    title: str,
    *,
    texts: dict[str, str] | None = None,
    thresholds: bool = False,
) -> Path:
    from .experiments.analysis import analyze
    from .reporting.outputs import saved_elsewhere
    from .reporting.report import write_report

    summary, sweeps = analyze(df, bounds=args.bounds, score=args.score)
    try:
        run = write_report(
            args.out, df, summary, sweeps, title=title, keep=args.keep_reports, texts=texts
        )
    except OSError as exc:  # the scores survive: write them where we can
        raise saved_elsewhere(
            lambda p: df.to_csv(p, index=False), exc, f"the report to {args.out}", "scores.csv"
        ) from None
    for cfg, m in summary["configs"].items():
        t = summary["thresholds"].get(cfg, {})
        print(
            f"{cfg}: top1={m['top1_acc']:.3f} mrr={m['mrr']:.3f} auc={m['auc']:.3f} "
            f"bestF1={t.get('best_f1', float('nan')):.3f} "
            f"AP={t.get('average_precision', float('nan')):.3f}"
        )
        if thresholds:
            print("\n".join(_threshold_lines(t)))
    print(f"report: {run / 'report.html'}")
    return run


def _stability(args: argparse.Namespace) -> int:
    from .experiments.stability import run_grid
    from .reporting.outputs import prepare_dir

    prepare_dir(args.out)  # before any request
    ds, templates, label_sets = _grid(args)
    backends = [_backend(args, spec) for spec in args.model]
    done: list[Any] = []
    try:
        df = run_grid(
            backends,
            ds,
            templates,
            label_sets,
            concurrency=args.concurrency,
            progress=not args.no_progress,
            on_rows=done.extend,
            scorer=_scorer(args),
        )
    except LogprobEvalError as exc:
        _keep_finished(exc, done, Path(args.out) / "partial-scores.csv")
        raise
    finally:
        for b in backends:
            b.close()
    texts = {ex.id: ex.text for ex in ds}
    _report(df, args, "Stability: models x templates x label phrasings", texts=texts)
    return _failure_summary(done)


def _compare_k(args: argparse.Namespace) -> tuple[int, str]:
    """The suite's k and where it came from: ``--k``, else ``--config``'s
    ``[expectations.ranking] k``, else the k both runs' reports were computed with, else 3."""
    from .errors import ConfigError
    from .reporting.compare import recorded_k

    if args.k is not None:
        return args.k, "--k"
    if args.config is not None:
        from .evalsuite.config import load_eval_config

        suite = load_eval_config(args.config)
        return int(suite.expect("ranking", "k", 3)), f"[expectations.ranking] k of {args.config}"
    recorded = recorded_k(args.a) | recorded_k(args.b)
    if len(recorded) > 1:
        raise ConfigError(
            f"the runs were computed with different k ({', '.join(map(str, sorted(recorded)))}); "
            "pass --k N, or --config with the suite's evals.toml"
        )
    if recorded:
        return recorded.pop(), "the k the runs' reports were computed with"
    return 3, "the default; pass --config with the suite's evals.toml, or --k"


def _compare_texts(args: argparse.Namespace) -> dict[str, str]:
    """The words of the texts, from ``--data`` (report folders carry their own)."""
    if args.data is None:
        return {}
    from .data.datasets import load_dataset

    ds = load_dataset(
        args.data, label_names=None, text_column=args.text_column, id_column=args.id_column
    )
    return {ex.id: ex.text for ex in ds}


def _compare(args: argparse.Namespace) -> int:
    from .reporting.compare import compare_runs

    k, k_from = _compare_k(args)
    md = compare_runs(
        args.a,
        args.b,
        out=args.out,
        k=k,
        k_from=k_from,
        alpha=args.alpha,
        min_effect=args.min_effect,
        texts=_compare_texts(args),
    )
    print(md.read_text(encoding="utf-8"))
    print(f"written: {md} and {md.with_suffix('.json')}")
    return 0


def _thresholds(args: argparse.Namespace) -> int:
    from .experiments.table import read_scores
    from .reporting.outputs import prepare_dir

    prepare_dir(args.out)
    df = read_scores(args.scores)
    _report(df, args, "Threshold experiment", thresholds=True)
    return 0


def _init(args: argparse.Namespace) -> int:
    from .evalsuite.starter import write_starter

    path, ds = write_starter(
        args.folder,
        args.data,
        text_column=args.text_column,
        labels_column=args.labels_column,
        id_column=args.id_column,
        force=args.force,
    )
    folder = args.folder
    print(
        f"wrote {path}: {len(ds)} texts, {len(ds.label_names)} labels "
        f"({', '.join(ds.label_names)}), labels from {ds.labels_from}\n"
        "next:\n"
        f"  pytest {folder} --record-mode=once      # record (needs the [local] extra)\n"
        f"  pytest {folder} --update-baselines      # pin what was recorded\n"
        f"  pytest {folder}                         # replay offline: the regression suite"
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .backends import get_backend
    from .experiments.synthetic import generate_dataset

    with get_backend(args.model) as backend:
        ds = generate_dataset(backend, args.n, seed=args.seed, cache_dir=args.out)
    print(f"{len(ds)} texts in {ds.source}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server.app import make_server
    from .server.engine import Engine, resolve_model_path

    path = resolve_model_path(args.model)
    engine = Engine(
        path, n_ctx=args.n_ctx, n_threads=args.threads, prefill_chunk=args.prefill_chunk
    )
    server = make_server(engine, args.model, args.host, args.port)
    print(
        f"logprob-eval serve: {args.model} on http://{args.host}:{server.server_port}/v1",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _add_analysis(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        default="reports",
        help="report directory; writes OUT/<run-id>/ and OUT/latest (default: reports)",
    )
    p.add_argument(
        "--bounds",
        choices=["optimistic", "pessimistic"],
        default="optimistic",
        help="how upper-bound scores enter the threshold sweep: optimistic lets a "
        "bound pass thresholds at or below it, pessimistic never (default: "
        "optimistic)",
    )
    p.add_argument(
        "--keep-reports",
        type=keep_count,
        default=10,
        metavar="N",
        help="keep the newest N run folders under OUT, 0 keeps all (default: 10); only "
        "folders logprob-eval created are ever deleted",
    )
    p.add_argument(
        "--score",
        default="logprob",
        help="column to threshold: logprob (default) or a transform column such as score_renorm",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logprob-eval",
        description="Evaluate LLM classifiers through label log-probabilities.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "init",
        help="write a starter eval suite (evals.toml) for your own data and labels",
        description="Write FOLDER/evals.toml from a dataset: its labels, a label set phrasing "
        "each as itself, the local model with both methods, two templates and floors a "
        "little above chance. `pytest FOLDER` then runs the suite.",
    )
    p.add_argument("folder", type=Path, help="the suite's folder (created if missing)")
    p.add_argument("--data", required=True, help="dataset CSV/TSV/JSONL/Parquet path")
    _add_columns(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing evals.toml")
    p.set_defaults(func=_init)

    p = sub.add_parser(
        "score",
        help="score a dataset: texts x templates x label sets",
        description="Score every text under every template and label set "
        "through one model; write the tidy scores table (CSV).",
    )
    _add_grid(p, many_models=False)
    p.add_argument(
        "--out",
        default="reports/scores.csv",
        help="CSV path or directory (default: reports/scores.csv)",
    )
    p.set_defaults(func=_score)

    p = sub.add_parser(
        "stability",
        help="stability grid -> metrics and report",
        description="Run models x templates x label phrasings (plus "
        "content-free inputs for calibration) and write the report.",
    )
    _add_grid(p, many_models=True)
    _add_analysis(p)
    p.set_defaults(func=_stability)

    p = sub.add_parser(
        "thresholds",
        help="threshold sweep over a scores table -> report",
        description="Sweep a global threshold, per-label thresholds and a "
        "dev->test transfer over a scores CSV written by `score`.",
    )
    p.add_argument("--scores", type=Path, required=True, help="scores CSV from `score`")
    _add_analysis(p)
    p.set_defaults(func=_thresholds)

    p = sub.add_parser(
        "compare",
        help="compare two runs: paired tests per config and the texts that flipped",
        description="Compare run B with run A (report folders or scores tables) on the texts "
        "both scored: per config the metric differences with their intervals and p-values "
        "from one test (a paired bootstrap; McNemar's exact test for top-1), regressions, and "
        "the texts whose top label changed or whose true label left the top k, with their "
        "words. Texts and configs in one run only are counted and named. Writes "
        "comparison.md and comparison.json.",
    )
    p.add_argument("a", type=Path, help="run A: a report folder (or its scores.csv)")
    p.add_argument("b", type=Path, help="run B: a report folder (or its scores.csv)")
    p.add_argument("--out", type=Path, default=Path("comparison"), help="output folder")
    p.add_argument(
        "--k",
        type=_positive_int,
        default=None,
        help="top-k (default: the suite's, from --config, else the k the runs' reports were "
        "computed with, else 3)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the suite's evals.toml: its [expectations.ranking] k is used",
    )
    p.add_argument(
        "--data",
        default=None,
        help="dataset file whose texts are shown beside the flipped ids (report folders of "
        "`pytest evals` carry their own)",
    )
    _add_columns(p, labels=False)
    p.add_argument("--alpha", type=float, default=0.05, help="significance (default: 0.05)")
    p.add_argument(
        "--min-effect", type=float, default=0.02, help="smallest drop that counts (default: 0.02)"
    )
    p.set_defaults(func=_compare)

    p = sub.add_parser(
        "generate",
        help="synthetic multi-label data through a model",
        description="Generate N short texts about 1-3 random topics without "
        "naming them; cached as CSV by model, N and seed.",
    )
    p.add_argument("--model", required=True, help="provider:model")
    p.add_argument("--n", type=int, default=100, help="number of texts (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--out", default="data", help="cache directory (default: data)")
    p.set_defaults(func=_generate)

    p = sub.add_parser(
        "serve",
        help="run the local model behind an OpenAI-compatible server",
        description="Serve a local GGUF model over the OpenAI protocol: "
        "/v1/completions with echo and prompt log-probs, /v1/chat/completions "
        "with top_logprobs, /v1/models. Needs the [local] extra.",
    )
    p.add_argument(
        "--model",
        default="gemma-3-270m",
        help="local model name or path to a .gguf file (default: %(default)s)",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument(
        "--port", type=int, default=8008, help="port; 0 picks a free one (default: %(default)s)"
    )
    p.add_argument(
        "--n-ctx", type=int, default=2048, help="context length in tokens (default: %(default)s)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads for prefill and decode (default: every core for prefill "
        "batches, half of them for one-token decodes)",
    )
    p.add_argument(
        "--prefill-chunk",
        type=int,
        default=512,
        help="prompt tokens per llama.cpp decode call, counted from position 0; every token "
        "after the prompt is evaluated alone, so numbers are reproducible at any value "
        "(default: %(default)s)",
    )
    p.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .reporting.outputs import missing_dirs, remove_empty

    out = getattr(args, "out", None) or getattr(args, "folder", None)
    if out is not None and Path(out).suffix in (".csv", ".md", ".json"):
        out = Path(out).parent
    new_dirs = missing_dirs(out) if out is not None else []
    try:
        return int(args.func(args))
    except LogprobEvalError as exc:
        print(f"logprob-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        remove_empty(new_dirs)  # a failed run leaves no empty folder behind


if __name__ == "__main__":
    sys.exit(main())
