from pathlib import Path

from referrals.app import create_app
from referrals.settings import ReferralsSettings
from shared.entrypoint import service_cli

cli = service_cli(
    name="referrals",
    settings_factory=ReferralsSettings,
    create_app=create_app,
    service_root=Path(__file__).resolve().parents[2],
)

if __name__ == "__main__":
    cli()
