"""The three views, each registered with dash.register_page (never importing the app)."""
