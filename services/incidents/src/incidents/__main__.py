"""``python -m incidents migrate`` applies this service's migrations to its database."""

from incidents.config import MIGRATIONS_DIR, IncidentsSettings
from tandem.migrations import migrate_command

if __name__ == "__main__":
    migrate_command(MIGRATIONS_DIR, IncidentsSettings())
