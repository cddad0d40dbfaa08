"""The profile REST API (admin token), one router per resource."""
