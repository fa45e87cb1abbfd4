"""English for messages: articles and plurals, so no message reads "a elf file" or "1 dumps".

A leaf with no imports: library errors and command output both use it.
"""

from __future__ import annotations

# Abbreviations read letter by letter from a vowel sound ("an MSF"), and words spelled
# with a vowel but read from a consonant ("a unicode name").
_AN_WORDS = {"elf", "exe", "msf", "mz", "nb10", "rsds", "sys", "html", "http", "xml"}
_A_PREFIXES = ("uni", "use", "usu", "one", "eu")


def article(word: str) -> str:
    """``word`` after "a" or "an" as it is read aloud: "an ELF file", "a PDB", "an MSF stream"."""
    low = word.lower()
    if low in _AN_WORDS:
        vowel = True
    elif low.startswith(_A_PREFIXES):
        vowel = False
    else:
        vowel = low[:1] in "aeiou"
    return f"{'an' if vowel else 'a'} {word}"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` with the noun in the right number: "1 dump", "2 dumps", "1 binary", "3 binaries"."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


__all__ = ["article", "count"]
