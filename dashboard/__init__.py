"""The Dash app: shell, pages, thin callbacks, folium export."""
