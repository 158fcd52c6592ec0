"""Schemathesis against the app's own OpenAPI document: generated requests (valid and invalid) never get a 5xx.

Every operation is called with a bounded number of generated cases (``FACELAB_FUZZ_EXAMPLES``,
default 12) over ASGI, with an admin key; responses must match their documented status
codes, content types and schemas.  URL images are disabled on this app (no network).
"""

from __future__ import annotations

import os
import tempfile

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the API fuzz test needs schemathesis: pip install -e '.[test]'")
pytest.importorskip("fastapi", reason="the server tests need the server extra: pip install -e '.[test]'")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance  # noqa: E402

from facelab.serve import Settings, create_app  # noqa: E402
from facelab.serve.keys import KeyStore  # noqa: E402

EXAMPLES = int(os.environ.get("FACELAB_FUZZ_EXAMPLES", "12"))

# Built at import: schemathesis' lazy fixture loader does not work with this pytest.  The models load
# when schemathesis starts the app's lifespan (block_startup: it is ready before the first case).
_DATA = tempfile.TemporaryDirectory(prefix="facelab-fuzz-")
_KEY = KeyStore(os.path.join(_DATA.name, "keys.json")).create("admin", "fuzz")[0]
_APP = create_app(Settings(data_dir=_DATA.name, min_face=80, allow_urls=False, block_startup=True, max_body_bytes=2_000_000))
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(
        headers={"X-API-Key": _KEY},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
