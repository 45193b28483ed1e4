"""Prompt templates and label sets.

A :class:`Template` is a format string with ``{text}`` (required) and ``{labels}``
(optional: the label set's phrases joined by ``", "``). Templates are validated when they
are made: a missing ``{text}``, an unknown placeholder or a broken brace is a
:class:`~logprob_eval.errors.ConfigError`. Literal braces are written ``{{`` and ``}}``.

A :class:`LabelSet` maps the dataset's label names (the user's, in any script) to one
phrasing of them, so results from different phrasings compare through the label names.
A label set must phrase exactly the labels of the dataset it scores
(:meth:`LabelSet.check_covers`). The built-in three phrase the study's ten topics
(``simple``: ``tech``; ``normal``: ``Technology``; ``verbose``: ``article about
technology``); :func:`as_is` phrases any labels as themselves.

The study's nine templates end where the answer begins ("Topic:"), which suits both a base
model and the teacher-forced method; users add their own from TOML (:func:`load_prompt_config`).
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnknownNameError

__all__ = [
    "LABEL_SETS",
    "TEMPLATES",
    "TOPICS",
    "LabelSet",
    "PromptConfig",
    "Template",
    "as_is",
    "get_label_set",
    "get_template",
    "load_prompt_config",
    "read_config_file",
    "unwrap_tool_table",
]

TOPICS: tuple[str, ...] = (
    "Technology",
    "Sports",
    "Politics",
    "Art",
    "Science",
    "Health",
    "Education",
    "Travel",
    "Food",
    "History",
)
"""The ten canonical topics of the study, in its order."""

_FIELDS = frozenset({"text", "labels"})


@dataclass(frozen=True, slots=True)
class Template:
    """A validated prompt template."""

    name: str
    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise ConfigError(f"template {self.name!r}: text must be a non-empty string")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.text) if f is not None]
        except ValueError as exc:
            raise ConfigError(
                f"template {self.name!r}: {exc}; write literal braces as '{{{{' and '}}}}'"
            ) from None
        for f in fields:
            base = f.split(".")[0].split("[")[0].split("!")[0]
            if base not in _FIELDS or base != f:
                raise ConfigError(
                    f"template {self.name!r}: unknown placeholder {{{f}}}; only {{text}} and "
                    "{labels} are filled (write literal braces as '{{' and '}}')"
                )
        if "text" not in fields:
            raise ConfigError(
                f"template {self.name!r} has no {{text}} placeholder: the text to classify "
                "would never reach the model; add {text}"
            )

    def render(self, text: str, labels: Iterable[str] | LabelSet = ()) -> str:
        """The prompt for one text; ``labels`` fills ``{labels}`` joined by ``", "``."""
        phrases = labels.phrases if isinstance(labels, LabelSet) else tuple(labels)
        return self.text.format(text=text, labels=", ".join(phrases))


@dataclass(frozen=True, slots=True)
class LabelSet:
    """One phrasing of the canonical labels: ``mapping`` is canonical -> phrase."""

    name: str
    mapping: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.mapping:
            raise ConfigError(f"label set {self.name!r} is empty; give it at least two labels")
        seen: dict[str, str] = {}
        for canon, phrase in self.mapping.items():
            if not isinstance(phrase, str) or not phrase.strip():
                raise ConfigError(
                    f"label set {self.name!r}: phrase for {canon!r} must be a non-empty string"
                )
            key = phrase.strip().casefold()
            if key in seen:
                raise ConfigError(
                    f"label set {self.name!r}: {seen[key]!r} and {canon!r} share the phrase "
                    f"{phrase!r}; labels must be distinguishable"
                )
            seen[key] = canon
        object.__setattr__(self, "mapping", dict(self.mapping))

    @property
    def canonical(self) -> tuple[str, ...]:
        return tuple(self.mapping)

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(self.mapping.values())

    def phrase(self, canonical: str) -> str:
        try:
            return self.mapping[canonical]
        except KeyError:
            raise UnknownNameError(
                f"label in set {self.name!r}", canonical, self.canonical
            ) from None

    def check_covers(self, labels: Iterable[str], *, source: str, fix: str) -> None:
        """Raise :class:`~logprob_eval.errors.ConfigError` unless this set phrases exactly
        ``labels`` (the labels of the dataset ``source``): a missing label would silently
        leave the candidates, an extra one would be a candidate no text can hold. ``fix``
        says where the user adds or removes a phrase."""
        wanted = tuple(labels)
        missing = [lab for lab in wanted if lab not in self.mapping]
        extra = [lab for lab in self.mapping if lab not in wanted]
        if not missing and not extra:
            return
        problems = []
        if missing:
            problems.append(f"has no phrase for {', '.join(map(repr, missing))}")
        if extra:
            problems.append(f"phrases {', '.join(map(repr, extra))}, not a label of the dataset")
        raise ConfigError(
            f"label set {self.name!r} {' and '.join(problems)} (labels of the dataset "
            f"{source}: {', '.join(wanted)}); {fix}"
        )

    def to_canonical(self, phrase: str) -> str:
        for canon, p in self.mapping.items():
            if p == phrase:
                return canon
        raise UnknownNameError(f"phrase in label set {self.name!r}", phrase, self.phrases)


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("simple", "Text: {text}\nTopics: {labels}\nTopic:"),
        Template(
            "instruction",
            "Classify the text below into one of these topics: {labels}.\n\nText: {text}\nTopic:",
        ),
        Template(
            "question",
            "Which of these topics is the following text about: {labels}?\n\nText: {text}\nTopic:",
        ),
        Template(
            "cot",
            "Text: {text}\n\nPossible topics: {labels}.\n"
            "Think about what the text describes, then name the topic that fits best.\nTopic:",
        ),
        Template(
            "json",
            "Classify the text into one of these topics: {labels}.\n"
            'Text: {text}\nAnswer as JSON: {{"topic": "',
        ),
        Template(
            "role",
            "You are a librarian who files short texts by topic. The shelves are: {labels}.\n\n"
            "Text: {text}\nShelf:",
        ),
        Template("task", "Task: topic classification.\nLabels: {labels}\nInput: {text}\nOutput:"),
        Template(
            "constrained",
            "Answer with exactly one topic from this list and nothing else: {labels}.\n\n"
            "Text: {text}\nTopic:",
        ),
        Template(
            "natural",
            'Here is a short text: "{text}"\nOf the topics {labels}, this text is about',
        ),
    )
}
"""The study's nine templates."""

LABEL_SETS: dict[str, LabelSet] = {
    "simple": LabelSet(
        "simple",
        {
            "Technology": "tech",
            "Sports": "sports",
            "Politics": "politics",
            "Art": "art",
            "Science": "science",
            "Health": "health",
            "Education": "education",
            "Travel": "travel",
            "Food": "food",
            "History": "history",
        },
    ),
    "normal": LabelSet("normal", {t: t for t in TOPICS}),
    "verbose": LabelSet("verbose", {t: f"article about {t.lower()}" for t in TOPICS}),
}
"""The study's three phrasings of the ten topics."""


def as_is(labels: Iterable[str], name: str = "as-is") -> LabelSet:
    """A label set phrasing every label as itself (the default for a user's own labels)."""
    return LabelSet(name, {lab: lab for lab in labels})


def get_template(name: str, templates: Mapping[str, Template] | None = None) -> Template:
    table = TEMPLATES if templates is None else templates
    try:
        return table[name]
    except KeyError:
        raise UnknownNameError("template", name, tuple(table)) from None


def get_label_set(name: str, label_sets: Mapping[str, LabelSet] | None = None) -> LabelSet:
    table = LABEL_SETS if label_sets is None else label_sets
    try:
        return table[name]
    except KeyError:
        raise UnknownNameError("label set", name, tuple(table)) from None


@dataclass(frozen=True, slots=True)
class PromptConfig:
    """Templates and label sets: the built-in ones plus those a config file adds."""

    templates: Mapping[str, Template]
    label_sets: Mapping[str, LabelSet]


def _section(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: [{key}] must be a table, got {type(value).__name__}")
    return value


def unwrap_tool_table(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``[tool.logprob_eval]`` when the table is a ``pyproject.toml``, else the table itself."""
    tool = data.get("tool", {})
    if isinstance(tool, Mapping) and "logprob_eval" in tool:
        inner: Mapping[str, Any] = tool["logprob_eval"]
        return inner
    return data


def read_config_file(path: str | Path, *, what: str, fix: str) -> Mapping[str, Any]:
    """A TOML file's table (unwrapped from ``[tool.logprob_eval]``); clear errors if the
    file is missing (``fix`` says what to do) or not TOML."""
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {where!r} does not exist; {fix}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {where!r} is a folder, not a TOML file; {fix}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {where!r} is not valid TOML: {exc}") from None
    return unwrap_tool_table(data)


def load_prompt_config(source: str | Path | Mapping[str, Any]) -> PromptConfig:
    """Built-in templates/label sets overlaid with a TOML file's or a mapping's.

    Reads ``[templates]`` (name = "format string") and ``[label_sets.NAME]`` (canonical =
    "phrase") at the top level, or under ``[tool.logprob_eval]`` as in ``pyproject.toml``.
    """
    if isinstance(source, Mapping):
        data: Mapping[str, Any] = unwrap_tool_table(source)
        where = "config"
    else:
        where = str(source)
        data = read_config_file(source, what="config file", fix="check the path")
    templates = dict(TEMPLATES)
    for name, text in _section(data, "templates", where).items():
        if not isinstance(text, str):
            raise ConfigError(f"{where}: templates.{name} must be a string, got {text!r:.40}")
        templates[name] = Template(name, text)
    label_sets = dict(LABEL_SETS)
    for name, mapping in _section(data, "label_sets", where).items():
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{where}: label_sets.{name} must be a table canonical = phrase")
        label_sets[name] = LabelSet(name, dict(mapping))
    return PromptConfig(templates, label_sets)
