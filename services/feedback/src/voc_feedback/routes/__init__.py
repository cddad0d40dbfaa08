"""The feedback REST API by resource, one `APIRouter` per module (included by `api.build_app`)."""
