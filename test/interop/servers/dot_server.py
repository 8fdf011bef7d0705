"""A tiny django-oauth-toolkit authorization server for the interop suite.

Started by test/interop/servers/dot.ts with the system Python (Debian's
python3-django-oauth-toolkit). Everything is configured here, in one file: sqlite in a
temporary directory, an OpenID Provider with an RS256 key from the environment, refresh
token rotation, PKCE required, clients and a user from INTEROP_CONFIG (JSON). Binds
127.0.0.1 on a free port and prints `listening <port>` once it serves.

Test-only additions, outside the toolkit: a user is signed in by the trusted
`X-Interop-User` header (RemoteUserMiddleware, as behind an SSO proxy), the clients skip
the consent screen, `GET /_interop/counters` reports refresh grants and refresh token
reuse (a spent refresh token presented again), counted in the token validator, and
`POST /_interop/expire` expires an access token at the server.
"""

import json
import os
import sys
import threading
from datetime import timedelta

import django
from django.conf import settings

config = json.loads(os.environ["INTEROP_CONFIG"])

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.urandom(32).hex(),
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "oauth2_provider",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        f"{__name__}.HeaderUserMiddleware",
    ],
    AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.RemoteUserBackend"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(config["dataDir"], "db.sqlite3"),
            "OPTIONS": {"timeout": 30},
        }
    },
    # Server errors (tracebacks) go to stderr, which the launcher keeps for its error messages.
    LOGGING={
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    OAUTH2_PROVIDER={
        "ACCESS_TOKEN_EXPIRE_SECONDS": config["accessTokenTtl"],
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
        "PKCE_REQUIRED": True,
        "OIDC_ENABLED": True,
        "OIDC_RSA_PRIVATE_KEY": os.environ["INTEROP_RSA_KEY"],
        "SCOPES": {scope: scope for scope in config["scopes"]},
        "DEFAULT_SCOPES": ["read"],
        "OAUTH2_VALIDATOR_CLASS": f"{__name__}.CountingValidator",
    },
)
django.setup()

from django.contrib.auth.middleware import RemoteUserMiddleware  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from oauth2_provider.models import AccessToken, Application, RefreshToken  # noqa: E402
from oauth2_provider.oauth2_validators import OAuth2Validator  # noqa: E402

COUNTERS = {"refreshGrants": 0, "refreshRejected": 0, "reuse": 0}
LOCK = threading.Lock()


class HeaderUserMiddleware(RemoteUserMiddleware):
    header = "HTTP_X_INTEROP_USER"


class CountingValidator(OAuth2Validator):
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not valid:
            spent = RefreshToken.objects.filter(token=refresh_token, revoked__isnull=False).exists()
            with LOCK:
                COUNTERS["refreshRejected"] += 1
                if spent:
                    COUNTERS["reuse"] += 1
        return valid

    def save_bearer_token(self, token, request, *args, **kwargs):
        result = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "refresh_token":
            with LOCK:
                COUNTERS["refreshGrants"] += 1
        return result


def counters(request):
    with LOCK:
        return JsonResponse(dict(COUNTERS))


def expire(request):
    # The access token expires at the server now (as with clock skew); its refresh token stays valid.
    updated = AccessToken.objects.filter(token=request.POST.get("token", "")).update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    return JsonResponse({"expired": updated})


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("_interop/counters", counters),
    path("_interop/expire", expire),
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_user(config["user"], password=None)
    for client in config["clients"]:
        Application.objects.create(
            name=client["clientId"],
            client_id=client["clientId"],
            client_secret=client.get("clientSecret", ""),
            client_type=client["type"],
            authorization_grant_type=client["grant"],
            redirect_uris=config["redirectUri"],
            skip_authorization=True,
            algorithm=Application.RS256_ALGORITHM if client["grant"] == "authorization-code" else "",
        )
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.set_app(get_wsgi_application())
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
