"""``GET /api/v1/docs``: the browsable documentation of the OpenAPI document, with Swagger UI.

Swagger UI is vendored under ``static/vendor/swagger-ui/`` (the ``swagger-ui-dist`` package from the npm registry,
Apache-2.0, version in its ``package.json``): no CDN at run time, and the app's Content-Security-Policy
(``script-src 'self'``, no inline script) holds, so the page's start-up script is served from here.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template_string, url_for
from flask_babel import gettext as _

from app.api.problems import caller_language

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1/docs")

PAGE = """<!DOCTYPE html>
<html lang="{{ language }}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }}</title>
  <link rel="stylesheet" href="{{ url_for('static', filename='vendor/swagger-ui/swagger-ui.css') }}">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{{ spec_url }}"></div>
  <script src="{{ url_for('static', filename='vendor/swagger-ui/swagger-ui-bundle.js') }}"></script>
  <script src="{{ url_for('api_docs.start_script') }}"></script>
</body>
</html>
"""

# No inline script (CSP): the options are fixed, the document's URL comes from the page. No validator badge (it
# would call swagger.io), no "try it out" by default (the calls are real).
START_SCRIPT = """window.addEventListener("load", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.specUrl,
    domNode: element,
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


@bp.get("")
def page() -> str:
    return render_template_string(
        PAGE,
        language=caller_language(),
        title=_("%(api)s: documentation", api=current_app.config["API_TITLE"]),
        spec_url=url_for("api-docs.openapi_json"),
    )


@bp.get("/start.js")
def start_script() -> Response:
    response = Response(START_SCRIPT, mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
