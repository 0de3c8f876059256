"""The browser side, served by the service: the ES module, its types and the demo page."""
