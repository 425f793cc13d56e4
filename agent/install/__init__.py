"""What ``scripts/install.sh`` asks Python to do: the clinic's settings, checked and written.

    install.sh --site-id ... --ca-file ... (or questions on a terminal)
        -> checks      each setting checked on its own (a CA that is a PEM certificate, ...)
        -> gather      the settings, asked for when missing, staged in a private directory
        -> write       agent.toml and secrets.toml (new, or the given keys edited in place),
                       the CA, client certificate and key and trusted keys copied next to them
        -> rooted      a copy of the config whose paths point into --root, for validate and doctor

It runs on the system's Python before the agent's virtualenv exists (from the source tree or
from the agent's wheel in a bundle), so it uses the standard library and ``agent.i18n`` only:
every text it shows comes from the catalogue (``agent.catalogue.install``).
"""
