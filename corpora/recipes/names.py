#!/usr/bin/env python3
"""Write corpora/names.tsv: the person-name lexicon the entity-swap attack draws from.

The names are Faker's (PyPI `faker` 40.63.0, MIT licence), taken from its person providers,
`faker/providers/person/<locale>/__init__.py`: `first_names_female`, `first_names_male` and
`last_names`. The wheel is downloaded with pip into a temporary folder and the provider modules
are imported from the unzipped wheel; nothing is installed.

Only names an English tokenizer sees as one plain word are kept: ASCII letters, one capital then
lower case (no "McDonald"), no spaces, hyphens or apostrophes (so non-Latin locales contribute
nothing and are not listed).
Faker weights some lists by frequency (OrderedDict name -> weight); those are ranked by weight,
ties by name, so the cap keeps the commonest names. Plain tuples keep Faker's order. At most
MAX_PER_LIST names are taken from each (locale, list), then rows are sorted, so the output is
byte-for-byte reproducible from the pinned version.

A first name on both the female and the male list of a locale is written once with gender `any`;
last names always have gender `any`.

Usage: python3 corpora/recipes/names.py > corpora/names.tsv
"""
import importlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FAKER_VERSION = "40.63.0"
MAX_PER_LIST = 200
# Latin-script locales with gendered first-name lists; yo_NG stands for West Africa.
LOCALES = ["en_US", "en_GB", "en_IN", "yo_NG", "es_MX"]
PLAIN = re.compile(r"^[A-Z][a-z]+$")


def ranked(names):
    """Names in rank order: by weight when Faker gives weights, else Faker's own order."""
    if isinstance(names, dict):
        return [n for n, _ in sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))]
    seen, out = set(), []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


def capped(names):
    return [n for n in ranked(names) if n.isascii() and PLAIN.match(n)][:MAX_PER_LIST]


def rows_for(locale, provider):
    female = capped(provider.first_names_female)
    male = capped(provider.first_names_male)
    both = set(female) & set(male)
    rows = set()
    for name in female:
        rows.add((name, "any" if name in both else "female", locale, "first"))
    for name in male:
        rows.add((name, "any" if name in both else "male", locale, "first"))
    for name in capped(provider.last_names):
        rows.add((name, "any", locale, "last"))
    return rows


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, f"faker=={FAKER_VERSION}"],
            check=True,
        )
        wheel = next(Path(tmp).glob("faker-*.whl"))
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel) as z:
            z.extractall(unpacked)
        sys.path.insert(0, str(unpacked))
        rows = set()
        for locale in LOCALES:
            module = importlib.import_module(f"faker.providers.person.{locale}")
            rows |= rows_for(locale, module.Provider)
    out = sys.stdout
    out.write("name\tgender\torigin\tkind\n")
    for name, gender, origin, kind in sorted(rows, key=lambda r: (r[2], r[3], r[1], r[0])):
        out.write(f"{name}\t{gender}\t{origin}\t{kind}\n")


if __name__ == "__main__":
    main()
