"""``python -m frontend``: start facegate (and the embedded Triton unless FACEGATE_TRITON_URL is set)."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from deploy.embedded_triton import TritonStartError
from frontend.api import logs
from frontend.api.app import create_app
from frontend.config import Settings, SettingsError

MANUAL_SAMPLE_KEY = "dcbbad6765e14139a07d34b92292a672"


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"facegate: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except SettingsError as error:
        print(f"facegate: bad configuration: {error}", file=sys.stderr)
        return 2
    if settings.aes_key.split(",")[0].strip() == MANUAL_SAMPLE_KEY:
        logging.getLogger("facegate").warning(
            "FACEGATE_AES_KEY is the SenseID manual's published sample key: development only"
        )
    try:
        web.run_app(app, host=settings.host, port=settings.port, **settings.server_options)
    except TritonStartError as error:
        logging.getLogger("facegate").error("embedded Triton did not start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
