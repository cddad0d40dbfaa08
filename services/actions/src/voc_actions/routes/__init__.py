"""The REST routes of the actions service, one router per resource."""
