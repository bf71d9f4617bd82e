"""The ``densemap`` command group. Commands are imported lazily so ``--help`` stays fast."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from densemap import __version__

# command name -> (module, function): loaded on demand so that `densemap --help`
# does not import torch
COMMANDS = {
    "info": ("densemap.cli.info", "info"),
    "align": ("densemap.cli.align", "align"),
    "convert-annotations": ("densemap.cli.convert", "convert_annotations"),
    "synth": ("densemap.cli.synth", "synth"),
    "show-annotations": ("densemap.cli.show", "show_annotations"),
    "train": ("densemap.cli.train", "train"),
    "eval": ("densemap.cli.eval", "eval_"),
    "predict": ("densemap.cli.predict", "predict"),
    "pseudo-label": ("densemap.cli.pseudo", "pseudo_label"),
    "view": ("densemap.cli.view", "view"),
    "transfer-parts": ("densemap.cli.transfer_parts", "transfer_parts"),
    "charts": ("densemap.cli.charts", "charts"),
    "export-cse": ("densemap.cli.cse", "export_cse"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, with a usage error printed as one line (the command's --help named)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra) or 0
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "densemap")
            click.echo(f"Error: {exc.format_message().rstrip('.')} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="densemap")
@click.option("-v", "--verbose", count=True, help="More output (repeat for debug logging).")
@click.option("-q", "--quiet", is_flag=True, help="No logs or progress: results (stdout) and errors only.")
@click.pass_context
def main(ctx, verbose, quiet):
    """densemap: carry dense-pose knowledge from humans to proximal animals.

    Run `densemap align` to align the embedded human and chimpanzee meshes.

    Results go to stdout, logs and progress to stderr; -q silences the logs, not the
    results. An error is one line and a non-zero exit (-v adds the traceback).
    """
    level = 0 if quiet else 1 + verbose
    ctx.obj = {"verbosity": level}
    logging.basicConfig(
        level=logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":  # pragma: no cover
    main()
