"""Notify's REST routes, one router per resource; `api.build_app` includes them all."""
