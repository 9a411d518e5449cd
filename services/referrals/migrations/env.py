from referrals.models import metadata
from referrals.settings import ReferralsSettings
from shared.migrations import run_env

run_env(metadata, lambda: ReferralsSettings().database_url)
