"""Masking secrets in text that leaves firehook: run logs and dry-run answers.

Scripts get the values of sensitive variables, and may print them or put them in a URL they
fetch (a Slack webhook URL is a secret). The log that is stored and shown replaces every
occurrence of a sensitive value with ``******``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from firehook import model

MIN_LENGTH = 4  # shorter values ("1", "yes") would mask ordinary words


class Masker:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, model.SECRET_MASK)
        return text

    def wrap(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` with every message masked (``log`` itself when there is nothing to mask)."""
        if not self.secrets:
            return log
        return lambda message: log(self(message))


def sensitive_values(variables: Iterable[model.Variable]) -> list[str]:
    return [v.value for v in variables if v.is_sensitive]
