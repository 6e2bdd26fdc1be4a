"""One module per group of report sections; each function returns its <section> or ""."""
