"""Exit codes and default paths every ``clinic-agent`` command shares (imports nothing)."""

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = "/etc/clinic-agent/agent.toml"
DEFAULT_STATE_DIR = "/var/lib/clinic-agent"
