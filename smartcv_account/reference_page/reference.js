// Renders /api/openapi.json with Swagger UI; served by the service (no inline script, so the
// page's Content-Security-Policy can stay `script-src 'self'`).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    // No badge from validator.swagger.io: nothing is loaded from another host.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
