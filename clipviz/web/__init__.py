"""The Dash web app: app factory, one module per page, shared components."""
