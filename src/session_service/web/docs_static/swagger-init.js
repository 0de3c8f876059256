// Starts Swagger UI on /docs. A file of its own because the page's policy allows no inline
// script; the OpenAPI document's URL is the container's data-openapi-url attribute.
"use strict";
{
  const container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.dataset.openapiUrl,
    domNode: container,
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // No validity badge: it is an image of the online validator, another origin.
    validatorUrl: null,
  });
}
