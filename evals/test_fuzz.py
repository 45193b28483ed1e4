"""The hypothesis fuzzing of the matcher and the parsers, run with the suite
(HYPOTHESIS_PROFILE=ci for more examples). The properties live in tests/."""

from __future__ import annotations

from tests.test_matcher_properties import (  # noqa: F401
    test_adding_non_matching_alternatives_never_raises_a_score,
    test_exact_scores_follow_a_valid_path,
    test_huge_top_k_duplicates_and_empty_tokens,
    test_label_spelled_by_sampled_tokens_scores_their_sum,
    test_only_library_errors_escape,
    test_prefix_only_alternative_is_never_exact,
    test_scores_are_at_most_zero_and_never_nan,
)
from tests.test_parsing import test_parsers_raise_only_library_errors  # noqa: F401
