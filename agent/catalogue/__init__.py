"""The message catalogue beyond the CLI's own words (agent.i18n): one module per subject.

    config   every config problem (agent.config), and the phrases they are built from
    sources  device failure reasons (agent.sources: SourceError codes, poll.reason_code)
    cli      the command line's help, the config commands, argparse's own words
    install  the installer's words (scripts/install.sh, agent.install)
    oserrors operating-system errors by errno (``os_error``), instead of the C library's English
    broker   why the broker connection failed, the centre's drain budget (agent.publish)
"""

from agent.catalogue import broker, cli, config, install, oserrors, sources

CATALOGUES = (config.MESSAGES, cli.MESSAGES, install.MESSAGES, sources.MESSAGES,
              oserrors.MESSAGES, broker.MESSAGES)
