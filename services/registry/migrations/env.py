from registry.models import metadata
from registry.settings import RegistrySettings
from shared.migrations import run_env

run_env(metadata, lambda: RegistrySettings().database_url)
