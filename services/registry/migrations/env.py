import registry.dci.models  # noqa: F401  (the SPDCI tables live on the same MetaData)
from registry.models import metadata
from registry.settings import RegistrySettings
from shared.migrations import run_env

run_env(metadata, lambda: RegistrySettings().database_url)
