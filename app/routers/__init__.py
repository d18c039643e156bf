"""HTTP: one module per URL collection, thin handlers over app.domain."""
