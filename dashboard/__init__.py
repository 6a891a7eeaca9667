"""The Dash app: shell, pages, thin callbacks, standalone map export."""
