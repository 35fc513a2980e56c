"""The app's extension objects, created once and bound to each app in :func:`create_app`."""

from __future__ import annotations

from flask_caching import Cache
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from flask_connectwise import ConnectWise

db = SQLAlchemy()
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
cache = Cache()
cw = ConnectWise()

__all__ = ["cache", "csrf", "cw", "db", "login_manager", "migrate"]
