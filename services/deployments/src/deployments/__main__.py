"""``python -m deployments migrate`` applies this service's migrations to its database."""

from deployments.config import MIGRATIONS_DIR, DeploymentsSettings
from tandem.migrations import migrate_command

if __name__ == "__main__":
    migrate_command(MIGRATIONS_DIR, DeploymentsSettings())
