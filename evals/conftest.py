"""The eval suite. Fixtures and the case matrix come from the logprob_eval pytest plugin."""
