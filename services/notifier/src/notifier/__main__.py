"""``python -m notifier migrate`` applies this service's migrations to its database."""

from notifier.config import MIGRATIONS_DIR, NotifierSettings
from tandem.migrations import migrate_command

if __name__ == "__main__":
    migrate_command(MIGRATIONS_DIR, NotifierSettings())
