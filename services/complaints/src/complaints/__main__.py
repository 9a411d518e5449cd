from pathlib import Path

from complaints.app import create_app
from complaints.settings import ComplaintsSettings
from shared.entrypoint import service_cli

cli = service_cli(
    name="complaints",
    settings_factory=ComplaintsSettings,
    create_app=create_app,
    service_root=Path(__file__).resolve().parents[2],
)

if __name__ == "__main__":
    cli()
