from voc_feedback.models import Base
from voc_platform.migrations import run_env

run_env(Base.metadata)
