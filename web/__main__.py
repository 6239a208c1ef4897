"""``python -m datatrust.web --config portal.toml``: serve the citizen portal (used by ``up``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from datatrust._logs import configure_logging
    from datatrust._tracing import configure_tracing
    from datatrust.errors import DatatrustError
    from datatrust.settings import PortalSettings, load_settings
    from datatrust.web import create_portal_app

    parser = argparse.ArgumentParser(prog="python -m datatrust.web", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (PortalSettings).")
    args = parser.parse_args(argv)
    try:
        log_config = configure_logging("json")
        configure_tracing("datatrust-portal")
        settings = load_settings(PortalSettings, toml_path=args.config)
        app = create_portal_app(settings)
    except DatatrustError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="warning", log_config=log_config
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
