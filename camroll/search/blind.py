"""Blind search tokens: what goes into the full-text index instead of words.

A token is an HMAC-SHA256 of a tagged word under a key derived from the owner's data key
(crypto/fields.py `blind_key`), cut to 80 bits and spelled in the letters a-p, so both SQLite's
FTS5 tokenizer and PostgreSQL's 'simple' parser keep it as one word. The index then holds no
plaintext: a token means nothing without the key, and destroying the data key (the purge does it
first) leaves tokens nobody can link to a word again. What stays visible is how often a token
occurs, as with any blind index: the same place word on many photos is one repeated token.

The words are tagged by how rank.py matches them, so a query word is hashed the same way:
  s:<stem>     a word of a tag or place name, plural-stemmed ("beaches" -> s:beach)
  p:<prefix>   each prefix of such a word from 3 letters ("yos" finds "Yosemite")
  t:<label>    a whole tag label, for tags found by meaning ("puppy" -> the tag "dog")
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from camroll.search.rank import MIN_PREFIX, stem, words

_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")  # hex digit -> letter
TOKEN_BYTES = 10


def token(key: bytes, tagged: str) -> str:
    digest = hmac.new(key, tagged.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return digest[:TOKEN_BYTES].hex().translate(_LETTERS)


def label_words(labels: Iterable[str], whole_labels: bool) -> set[str]:
    """The tagged words an asset is found by, for its tag labels or place names."""
    out: set[str] = set()
    for label in labels:
        if whole_labels:
            out.add(f"t:{label}")
        for w in words(label):
            out.add(f"s:{stem(w)}")
            out.update(f"p:{w[:k]}" for k in range(MIN_PREFIX, len(w) + 1))
    return out


def term_words(term: str) -> list[str]:
    """The tagged words a query word matches: the whole (stemmed) word, or as a prefix."""
    found = [f"s:{stem(term)}"]
    if len(term) >= MIN_PREFIX:
        found.append(f"p:{term}")
    return found


def tokens(key: bytes, tagged: Iterable[str]) -> list[str]:
    return sorted({token(key, t) for t in tagged})
