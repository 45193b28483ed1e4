"""The built-in checks of an eval suite, collected from its config file (see
:mod:`logprob_eval.evalsuite.collect`): one module per kind of check."""
