"""``clinic-central web``: the fleet page, a clinic's page, their JSON API, and the login.

    browser --HTTP--> Starlette app (app.py)
                        auth.py: login, signed session cookie, CSRF, roles, rate limit
                        central.fleet: one definition of a clinic's state (also the CLI's)
                        charts.py: VictoriaMetrics query_range -> inline SVG
                        texts.py: every word, Spanish and English
"""
