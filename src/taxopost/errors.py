"""The error types every layer shares: bad input, and a job that cannot go on.

Every entrance (CLI, importers, API, jobs) turns an :class:`InputError` into its own form of
"clear message naming the field and the value": exit code 2, a 400 with field errors, or a
failed job with the reason in its log.
"""

from __future__ import annotations

from typing import Any

#: The most of an offending value a message quotes: a 10 MB string sent as a field must not come
#: back in the error (nor fill a log line).
QUOTE_LIMIT = 80
#: Why a document nested past the parsers' recursion limit (about a thousand levels) is refused.
TOO_DEEP = "is nested too deeply to read (more than about a thousand levels of brackets)"


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, ending in ``...`` when cut.

    Values too large to print (an integer of 5,000 digits) are described instead of converted.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, str | bytes) and len(value) > limit:
        value = value[:limit]  # never repr a huge string whole just to cut it
    elif isinstance(value, list | tuple | dict | set) and len(value) > limit:
        return f"<a {type(value).__name__} of {len(value):,} items>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # too deep or too large to print
        return f"<a {type(value).__name__}>"
    return clip(text, limit)


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` (a field name, a path inside a document) cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputError(ValueError):
    """Bad input: names the field (and the file, when there is one) and quotes the value.

    Parameters
    ----------
    field : str
        What was wrong: a parameter, a column, a JSON key (``"thresholds"``, ``"rank"``).
    value : object
        The offending value, quoted in the message.
    reason : str
        What is wrong with it, phrased to complete "field=value: ...".
    source : str, optional
        The file (and row or line) the value came from.
    row : int, optional
        The row of a matrix the value is in, so a caller that built the matrix from records can
        name the record it came from.
    """

    def __init__(
        self, field: str, value: Any, reason: str, *, source: str | None = None, row: int | None = None
    ) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        self.source = source
        self.row = row
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.field}={quote(self.value)}: {self.reason}"

    def with_source(self, source: str) -> InputError:
        """Return the same error located in ``source`` (a file, a row) unless it already is."""
        if self.source:
            return self
        return InputError(self.field, self.value, self.reason, source=source, row=self.row)


class JobError(RuntimeError):
    """A job cannot go on for a reason that is not its input (a chunk that keeps killing workers).

    The message is recorded as the job's error as it is.
    """


class InputErrors(InputError):
    """Several problems of one input, reported at once (every problem of a task's config).

    It is the first problem as an :class:`InputError` (``field``, ``value``, ``reason``), so a
    caller that names one field still can; :attr:`errors` holds them all, and the message joins
    them on one line.
    """

    def __init__(self, errors: list[InputError]) -> None:
        if not errors:
            raise ValueError("InputErrors needs at least one error")
        self.errors = [item for error in errors for item in getattr(error, "errors", [error])]
        first = self.errors[0]
        super().__init__(first.field, first.value, first.reason, source=first.source, row=first.row)

    @property
    def message(self) -> str:
        return "; ".join(error.message for error in self.errors)

    def with_source(self, source: str) -> InputErrors:
        return InputErrors([error.with_source(source) for error in self.errors])


class ServiceUnavailable(RuntimeError):
    """A service an operation needs (the job broker) did not answer; nothing is lost, retry later.

    The message says what was not reached and what state was left (a job marked failed and
    resumable); the API answers 503 with it, the CLI prints it as one line (exit code 2).
    """
