"""What of a feedback item is a person's own words, in one place: the item's text, the free
text people wrote on its timeline (`FREE_TEXT_KEYS`: a resolution's note, an answer's comment,
a mail server's answer about the customer's address)
and the words the classifier's explanation quotes. A reader without customer records sees
them masked (`schemas`); an erased customer's items lose them (`cases.redact_customer`)."""

from __future__ import annotations

import re

from voc_platform.masking import mask_text

MAX_TEXT_CHARS = 4000
#: The timeline detail keys that hold what someone wrote (a follow-up's `reason`: what a mail
#: server said of the customer's mailbox, which may name them).
FREE_TEXT_KEYS = frozenset({"note", "comment", "reason"})
#: Steps whose note and reason are the services' own words (why a follow-up was not asked, held
#: or not sent), never what someone wrote or a server said: an erasure or the retention keeps
#: them, as does a step that reaches an item already redacted ("not sent: the customer was erased").
OWN_WORDS_KINDS = frozenset({"follow_up_not_sent", "follow_up_held", "follow_up_not_requested"})
_QUOTED = re.compile(r"'([^']*)'")


def masked_text(text: str | None) -> str | None:
    """A feedback text without the phone numbers and e-mails a customer typed into it, whole."""
    return None if text is None else mask_text(text, limit=MAX_TEXT_CHARS)


def shown_explanation(lines: list[str], shown_text: str) -> list[str]:
    """`lines` with each quoted word that `shown_text` does not contain as `'***'`: the
    explanation quotes the model's weighty words as typed (an e-mail's local part, half a
    resident number), so it may show no more than the text beside it ("" after erasure)."""
    shown = shown_text.casefold()

    def keep(word: re.Match[str]) -> str:
        return word.group(0) if word.group(1) and word.group(1).casefold() in shown else "'***'"

    return [_QUOTED.sub(keep, line) for line in lines]
