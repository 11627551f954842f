"""One module per page.  Each has ``PATH``, ``layout(**kwargs)`` (kwargs: the URL's query
parameters, as strings) and ``register(app)``, which registers the page and its callbacks."""
