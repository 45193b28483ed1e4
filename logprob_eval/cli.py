"""``logprob-eval``: the library's experiments without pytest."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import LogprobEvalError

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    from .server.app import make_server
    from .server.engine import Engine, resolve_model_path

    path = resolve_model_path(args.model)
    engine = Engine(path, n_ctx=args.n_ctx, n_threads=args.threads)
    server = make_server(engine, args.model, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"logprob-eval serve: {args.model} on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logprob-eval",
        description="Evaluate LLM classifiers through label log-probabilities.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the local model behind an OpenAI-compatible server",
        description="Serve a local GGUF model over the OpenAI protocol: /v1/completions with "
        "echo and prompt log-probs, /v1/chat/completions with top_logprobs, /v1/models. "
        "Needs the [local] extra.",
    )
    serve.add_argument(
        "--model",
        default="gemma-3-270m",
        help="local model name or path to a .gguf file (default: %(default)s)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=8008, help="port; 0 picks a free one (default: %(default)s)"
    )
    serve.add_argument(
        "--n-ctx", type=int, default=2048, help="context length in tokens (default: %(default)s)"
    )
    serve.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads (default: llama.cpp's choice)"
    )
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LogprobEvalError as exc:
        print(f"logprob-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
