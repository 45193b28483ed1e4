"""Data: the texts, their labels, and how they are put to a model (pytest-free).

* :mod:`.dataset_files`: reading a user's CSV/JSONL file, with errors by row and column;
* :mod:`.datasets`: a dataset (texts, true labels, the label names) and its samples;
* :mod:`.prompts`: templates, label sets (a phrase per label) and the config files that
  declare them. ``topics.csv`` is the built-in dataset.
"""

from .datasets import Dataset, Example, load_dataset
from .prompts import LabelSet, Template

__all__ = ["Dataset", "Example", "LabelSet", "Template", "load_dataset"]
