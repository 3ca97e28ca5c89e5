"""``python -m changes migrate`` applies this service's migrations to its database."""

from changes.config import MIGRATIONS_DIR, ChangesSettings
from tandem.migrations import migrate_command

if __name__ == "__main__":
    migrate_command(MIGRATIONS_DIR, ChangesSettings())
