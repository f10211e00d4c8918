"""Regenerate docs/cli.md from the CLI's own --help texts.

    .venv/bin/python docs/generate_cli_md.py          # rewrite docs/cli.md
    tests/sdk/test_docs.py fails when docs/cli.md is out of date.
"""

from __future__ import annotations

from pathlib import Path

import click

INTRO = """# The `edgesmith` command line

Generated from the commands' own `--help` by `docs/generate_cli_md.py`; a test fails when this page
falls behind the code.

Conventions shared by every command:

- `--help` (or `-h`) on every command; `--json` prints machine-readable output instead of the table.
- Exit codes: `0` success; `2` bad input a user can fix (missing or corrupt file, wrong shape, unknown
  recipe or option, unreachable target...), printed as one line with no traceback; `1` a run that
  failed (for example a recipe's `max_accuracy_drop` exceeded, or no `optimize` candidate meeting the
  constraint); `130` interrupted. `edgesmith --debug COMMAND ...` shows tracebacks.
- Files are written atomically (temp file, then rename): an interrupted run leaves no half-written file.
- Long work shows progress bars on stderr; results go to stdout.
"""


def render() -> str:
    """The whole page, one section per command in alphabetical order."""
    from edgesmith.cli import cli

    sections = [INTRO]
    settings = {**cli.context_settings, "terminal_width": 100}  # what `edgesmith --help` uses
    with click.Context(cli, info_name="edgesmith", **settings) as root:
        sections.append(_section("edgesmith", cli.get_help(root)))
        for name in cli.list_commands(root):
            command = cli.get_command(root, name)
            with click.Context(command, info_name=name, parent=root, **settings) as ctx:
                sections.append(_section(f"edgesmith {name}", command.get_help(ctx)))
    return "\n".join(sections)


def _section(title: str, help_text: str) -> str:
    return f"## `{title}`\n\n```text\n{help_text}\n```\n"


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
