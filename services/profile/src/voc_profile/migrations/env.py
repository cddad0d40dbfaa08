from voc_platform.migrations import run_env
from voc_profile.models import Base

run_env(Base.metadata)
