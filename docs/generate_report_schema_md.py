"""Regenerate docs/report-schema.md from the typed reports in edgesmith/runtime/report_schema.py.

    .venv/bin/python docs/generate_report_schema_md.py     # rewrite docs/report-schema.md
    tests/sdk/test_docs.py fails when docs/report-schema.md is out of date.

Each field's line comes from its comment in the dataclass; a field without one shows its type only.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

INTRO = """# report.json: the typed reports

Generated from `runtime/report_schema.py` by `docs/generate_report_schema_md.py`; a test fails when this page
falls behind the code.

Every `report.json` edgesmith writes holds one of these, with its `kind` and `schema_version`
(now {version}). `edgesmith report` reads them all, an `edgesmith optimize` folder included, and also the
untyped report.json files written before the schema had a version (version 1: the verification's fields
sat at the top level). From Python: `edgesmith.runtime.report_schema.read_report(json.load(file))`.
"""


def _comments(cls) -> dict:
    """``{field: its trailing comment}`` from the class's source."""
    found = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^#]+?(?:\s+#\s*(.*))?$", line)
        if match:
            found[match[1]] = match[2] or ""
    return found


def render() -> str:
    from edgesmith.runtime import report_schema as schema

    sections = [INTRO.format(version=schema.SCHEMA_VERSION)]
    for cls in (schema.ConversionReport, schema.Verification, schema.OutputCheck, schema.Stage, schema.Fallback,
                schema.WalkBack, schema.Cost, schema.TrialReport):
        comments = _comments(cls)
        rows = "".join(f"| `{f.name}` | `{f.type.replace(' | ', ' or ')}` | {comments.get(f.name, '')} |\n" for f in dataclasses.fields(cls))
        doc = " ".join(inspect.getdoc(cls).split())
        sections.append(f"## `{cls.__name__}`\n\n{doc}\n\n| field | type | meaning |\n|---|---|---|\n{rows}")
    return "\n".join(sections)


if __name__ == "__main__":
    target = Path(__file__).with_name("report-schema.md")
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
