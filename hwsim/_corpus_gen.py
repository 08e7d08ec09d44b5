"""The generator of the embedded character corpus ``hwsim/data/corpus.txt`` (text8-style: the 26
lower-case letters and the space).

A seeded stochastic grammar of English-like sentences (subject, verb, object, optional clauses) over a
fixed vocabulary, with word frequencies that fall off with rank, so the text has structure at the
levels a character model learns: spelling, word frequencies and word order. Written for hwsim (no
third-party text), released under the project's licence. Regenerate with
``python -m hwsim._corpus_gen > hwsim/data/corpus.txt``; a test checks the shipped file is this output.
"""
from __future__ import annotations

import sys

import numpy as np

_WORDS = {
    "det": ["the", "a", "this", "that", "every", "some", "no", "one", "each", "another"],
    "adj": ["small", "old", "red", "quiet", "bright", "heavy", "cold", "green", "long", "young", "dark",
            "empty", "warm", "strange", "simple", "early", "late", "happy", "slow", "quick", "broken",
            "wooden", "distant", "hidden", "golden", "silent"],
    "noun": ["house", "river", "machine", "child", "garden", "window", "city", "engine", "letter",
             "mountain", "teacher", "road", "bird", "market", "table", "forest", "signal", "number",
             "island", "doctor", "bridge", "station", "farmer", "ship", "clock", "lamp", "field", "village",
             "storm", "voice", "paper", "circuit", "memory"],
    "verb": ["sees", "finds", "builds", "opens", "carries", "follows", "watches", "moves", "writes",
             "reads", "holds", "leaves", "measures", "counts", "repairs", "paints", "crosses", "visits",
             "remembers", "answers"],
    "ivb": ["sleeps", "waits", "runs", "falls", "sings", "works", "grows", "turns", "stops", "returns"],
    "prep": ["near", "under", "over", "behind", "beside", "through", "across", "into", "from", "with"],
    "adv": ["slowly", "again", "often", "never", "quietly", "always", "soon", "later", "together", "alone"],
    "conj": ["and", "but", "while", "because", "when"],
}


def _pick(rng: np.random.Generator, kind: str) -> str:
    words = _WORDS[kind]
    p = 1.0 / np.arange(1, len(words) + 1)  # Zipf-like: frequency ~ 1 / rank
    return words[rng.choice(len(words), p=p / p.sum())]


def _noun_phrase(rng: np.random.Generator) -> list[str]:
    out = [_pick(rng, "det")]
    if rng.random() < 0.45:
        out.append(_pick(rng, "adj"))
    out.append(_pick(rng, "noun"))
    if rng.random() < 0.2:
        out += [_pick(rng, "prep"), *_noun_phrase(rng)]
    return out


def _clause(rng: np.random.Generator) -> list[str]:
    out = _noun_phrase(rng)
    if rng.random() < 0.6:
        out += [_pick(rng, "verb"), *_noun_phrase(rng)]
    else:
        out.append(_pick(rng, "ivb"))
    if rng.random() < 0.3:
        out.append(_pick(rng, "adv"))
    return out


def generate_corpus(n_chars: int = 150_000, seed: int = 2016) -> str:
    """About ``n_chars`` characters (whole sentences) of the grammar's text, words separated by spaces."""
    rng = np.random.default_rng(seed)
    words: list[str] = []
    length = 0
    while length < n_chars:
        sentence = _clause(rng)
        while rng.random() < 0.35:
            sentence += [_pick(rng, "conj"), *_clause(rng)]
        words += sentence
        length += sum(len(w) + 1 for w in sentence)
    return " ".join(words)


if __name__ == "__main__":
    sys.stdout.write(generate_corpus())
