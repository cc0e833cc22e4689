"""The `site-extender` command line."""

from __future__ import annotations

import sys

import click

from extender.errors import ConfigError
from extender.policy import load_policy
from extender.settings import Settings

EXIT_CONFIG_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """site-extender: a kube-scheduler extender that places VM pods onto sites."""


@main.command()
def serve() -> None:
    """Serve the extender under gunicorn with the package's gunicorn config.

    Settings come from SITE_EXTENDER_* variables (POLICY, INVENTORY, HOST, PORT, WORKERS, THREADS,
    ...). The policy is validated first: a bad one stops here with every problem listed.
    """
    settings = Settings()
    try:
        load_policy(settings.policy, settings.inventory)
    except ConfigError as exc:
        click.echo(f"site-extender: cannot start, the policy does not load:\n{exc}", err=True)
        sys.exit(EXIT_CONFIG_ERROR)
    from gunicorn.app.wsgiapp import run

    sys.argv = ["site-extender", "-c", "python:extender.gunicorn_conf"]
    run()


if __name__ == "__main__":
    main()
