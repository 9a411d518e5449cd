from pathlib import Path

from programs.app import create_app
from programs.settings import ProgramsSettings
from shared.entrypoint import service_cli

cli = service_cli(
    name="programs",
    settings_factory=ProgramsSettings,
    create_app=create_app,
    service_root=Path(__file__).resolve().parents[2],
)

if __name__ == "__main__":
    cli()
