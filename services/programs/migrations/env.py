from programs.models import metadata
from programs.settings import ProgramsSettings
from shared.migrations import run_env

run_env(metadata, lambda: ProgramsSettings().database_url)
