from tandem.migrations import run_env

run_env()
