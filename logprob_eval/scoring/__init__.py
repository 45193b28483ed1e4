"""Scoring: a label's log-prob read off a model's tokens (pytest-free, no I/O).

* :mod:`.records`: what a position and a label score are, and the bound rule for a label
  the server did not list (:meth:`~.records.Position.unlisted`);
* :mod:`.parsing` (with :mod:`._response_fields`, :mod:`._legacy_completions` and
  :mod:`.token_bytes`): API responses to positions;
* :mod:`.matcher`: a label's token paths through generated positions (generation method);
* :mod:`.echo`: a label's span in an echoed prompt (exact method);
* :mod:`.forced`: a label's tokens read one step at a time (forced continuation).

The public names (``match_labels``, ``parse_positions``, ``Position``, ...) are
re-exported once, by ``logprob_eval`` itself.
"""
