from pathlib import Path

from registry.app import create_app
from registry.demo import seed
from registry.settings import RegistrySettings
from shared.entrypoint import service_cli

cli = service_cli(
    name="registry",
    settings_factory=RegistrySettings,
    create_app=create_app,
    service_root=Path(__file__).resolve().parents[2],
    seed=seed,  # type: ignore[arg-type]
)

if __name__ == "__main__":
    cli()
