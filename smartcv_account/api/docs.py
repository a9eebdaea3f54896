"""The API's own description: the OpenAPI document, and a page that renders it.

The page is Swagger UI, from the pinned `flask-swagger-ui` package (which ships Swagger UI's
built assets; only its files are used, not its blueprint, whose page has an inline script).
Every asset is served by this service, so the page loads nothing from another host.
"""

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

from ..openapi import endpoint, spec_for

bp = Blueprint("docs", __name__)

SWAGGER_UI = Path(str(files("flask_swagger_ui").joinpath("dist")))
PAGE = Path(__file__).resolve().parent.parent / "reference_page"
# The page runs only its own scripts and styles; the data: images are Swagger UI's CSS icons.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@bp.get("/openapi.json")
@endpoint(
    {
        "type": "object",
        "description": "An OpenAPI 3.1 document.",
        "example": {
            "openapi": "3.1.0",
            "info": {"title": "SmartCV Account API", "version": "0.1.0"},
            "paths": {},
        },
    },
    security=None,
    envelope=False,
)
def openapi_document():
    """Return the OpenAPI 3.1 document of every endpoint.

    Anyone may read it; it changes nothing. It is generated from the views' own declarations,
    so it always matches what the running service accepts and answers.
    """
    return spec_for(current_app)


def _asset(directory: Path, name: str, mimetype: str):
    """Send one file of the reference page, with the page's Content-Security-Policy."""
    response = send_from_directory(directory, name, mimetype=mimetype, max_age=0)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def _declared(media_type: str, description: str, example: str):
    """The declaration of a reference page file: public, not enveloped, not JSON."""
    return endpoint(
        {"type": "string", "description": description},
        security=None,
        envelope=False,
        media_type=media_type,
        example=example,
    )


@bp.get("/docs")
@_declared("text/html", "The reference page.", "<!DOCTYPE html><html>…</html>")
def reference_page():
    """Show the API reference as a readable page (Swagger UI).

    Anyone may open it; it changes nothing. It renders /api/openapi.json with assets served by
    this service only.
    """
    return _asset(PAGE, "index.html", "text/html")


@bp.get("/docs/swagger-ui.css")
@_declared("text/css", "Swagger UI's style sheet.", ".swagger-ui{…}")
def reference_style():
    """Serve Swagger UI's style sheet for the reference page.

    Anyone may fetch it; it changes nothing. The version is the pinned flask-swagger-ui's.
    """
    return _asset(SWAGGER_UI, "swagger-ui.css", "text/css")


@bp.get("/docs/swagger-ui-bundle.js")
@_declared("text/javascript", "Swagger UI's script.", "/*! swagger-ui */…")
def reference_script():
    """Serve Swagger UI's script for the reference page.

    Anyone may fetch it; it changes nothing. The version is the pinned flask-swagger-ui's.
    """
    return _asset(SWAGGER_UI, "swagger-ui-bundle.js", "text/javascript")


@bp.get("/docs/reference.js")
@_declared("text/javascript", "The script that starts Swagger UI.", "SwaggerUIBundle({…});")
def reference_starter():
    """Serve the script that points Swagger UI at /api/openapi.json.

    Anyone may fetch it; it changes nothing.
    """
    return _asset(PAGE, "reference.js", "text/javascript")
