"""Flask extensions, created unbound here and bound to the app in create_app()."""

from __future__ import annotations

from flask_caching import Cache
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Storage comes from RATELIMIT_STORAGE_URI; memory:// is per process (see README, production).
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# The shared page cache (blog/pagecache.py chooses the backend: Redis, else files in instance/).
cache = Cache()
# gzip/brotli/zstd for text responses; blog/pagecache.py calls it, so it can skip pages with a
# CSRF token (BREACH) and compress after the page cache kept the uncompressed body.
compress = Compress()
