"""The ``edgesmith`` command line: a thin layer over the library.

Each command lives in its own module under ``edgesmith/commands/`` and does
three things only: parse options, call the library, format the result. Errors
a user can fix print one line and exit 2; a run that fails exits 1; a
traceback appears only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

import click

from edgesmith.cleanup import own_temp_folder, run_at_exit
from edgesmith.commands import interrupt
from edgesmith.runtime.errors import EdgesmithError

# command names; each lives in edgesmith.commands.<name with "_" for "-"> (imported only when used, so
# `edgesmith bench` on a Raspberry Pi never pulls in TensorFlow)
COMMANDS = ("bench", "classify", "convert", "convert-and-deploy", "debug", "demo", "deploy", "inspect", "mcu",
            "optimize", "report", "sensitivity")


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"edgesmith.commands.{name.replace('-', '_')}")
        return getattr(module, "command")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="edgesmith", prog_name="edgesmith")
@click.pass_context
def cli(ctx, debug):
    """Compress Keras models to TFLite, verify them on real data, and measure
    latency and energy on the device."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv=None) -> None:
    """Entry point: run the CLI and turn errors into one-line messages and exit codes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if argv is None:  # this process is the CLI's: its temporary files go with it, even when _leave skips atexit
        own_temp_folder()
    try:
        code = _run(argv, debug="--debug" in (argv if argv is not None else sys.argv[1:]))
    except SystemExit as done:  # a command that chose its own exit code
        code = done.code
    if isinstance(code, int) and code and argv is None:
        _leave(code)
    if code:
        sys.exit(code)


def _leave(code: int) -> None:
    """End the process with ``code``, skipping the interpreter's final garbage collection.

    A command stopped mid-training (by Ctrl-C or an error) leaves a tf.data thread inside a Python batch
    function, waiting for the GIL; that collection frees the thread's iterator while holding the GIL and
    waits for the thread forever. edgesmith's own clean-ups (:mod:`edgesmith.cleanup`: scratch files) still run.
    """
    run_at_exit()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe
            stream.flush()
    os._exit(code)


def _run(argv, debug: bool) -> int:
    """Run the CLI; return its exit code after printing any error in one line."""
    try:
        with interrupt.watched():
            try:
                cli.main(args=argv, standalone_mode=False, prog_name="edgesmith")
            except Exception:
                if interrupt.pressed():  # the library turned Ctrl-C into an error of its own
                    raise KeyboardInterrupt from None
                raise
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as usage:
        usage.show()
        return usage.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return interrupt.EXIT_CODE
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return interrupt.EXIT_CODE
    except EdgesmithError as error:
        if debug:
            raise
        click.echo(f"error: {error}", err=True)
        return error.exit_code
    except Exception as error:  # a bug, not a user error: one line unless --debug
        if debug:
            raise
        click.echo(f"error: {type(error).__name__}: {error} (rerun with --debug for a traceback)", err=True)
        return 1
    return 0
