from complaints.models import metadata
from complaints.settings import ComplaintsSettings
from shared.migrations import run_env

run_env(metadata, lambda: ComplaintsSettings().database_url)
