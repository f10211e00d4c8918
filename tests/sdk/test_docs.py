"""The docs follow the code: docs/cli.md is the CLI's own help, docs/report-schema.md the typed reports, every command is in the README tour
or the CLI page, and the log schema page names every field the validator requires."""

import importlib.util
from pathlib import Path

from edgesmith.runtime.logs import REQUIRED

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _generator(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator


def test_cli_page_is_current():
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == _generator("generate_cli_md").render(), (
        "docs/cli.md is out of date: run .venv/bin/python docs/generate_cli_md.py"
    )


def test_report_schema_page_is_current():
    assert (DOCS / "report-schema.md").read_text(encoding="utf-8") == _generator("generate_report_schema_md").render(), (
        "docs/report-schema.md is out of date: run .venv/bin/python docs/generate_report_schema_md.py"
    )


def test_log_schema_page_names_every_required_field():
    page = (DOCS / "log-schema.md").read_text(encoding="utf-8")
    for fields in REQUIRED.values():
        for name in fields:
            assert f"`{name}`" in page, name
