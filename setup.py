"""Packaging for notifier.

The top-level ``backends/`` and ``templates/`` folders install inside the
package, as ``notifier.backends`` and ``notifier.templates``, so nothing with
a generic name lands at the top of site-packages.
"""

from setuptools import find_packages, setup

EXTRAS = {
    "postgres": ["psycopg[binary]>=3.1"],
    "dbus": ["dbus-python>=1.3"],
    "fasjson": ["fasjson-client>=1.0"],
    "irc": ["irc>=20.0"],
    "amqp": ["fedora-messaging>=3.4"],
    "meta": ["fedmsg_meta_fedora_infrastructure"],
    # The web side's sign-in through OpenID Connect ([web] oidc_issuer), and the
    # API's docs page, served from this package's own copy of Swagger UI.
    "web": ["Authlib>=1.3", "httpx>=0.27", "swagger-ui-bundle>=1.1"],
    # The webpush destination: RFC 8291 encryption and VAPID (with http_ece, py_vapid).
    "webpush": ["pywebpush>=2.0", "httpx>=0.27"],
    # notifier-desktop, the desktop app: the session bus and the service's stream and API.
    "desktop": ["dbus-python>=1.3", "httpx>=0.27"],
    # The matrix destination: direct messages from a bot account ([matrix]).
    "matrix": ["matrix-nio>=0.24"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS["test"] = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "ruff>=0.6",
    "import-linter>=2.17",
    # Real peers the tests talk to.
    "fedmsg==1.1.7",
    "pyOpenSSL<24.3",  # fedmsg's x509 signing only imports with this
    "aiosmtpd>=1.4",
    "miniircd>=2.3",
    "python-dbusmock>=0.32",  # also Debian's dunst, Xvfb, status-notifier-watcher (dev/setup)
    "feedparser>=6.0",
    "httpx>=0.27",
    # Drives Debian's chromium (never a browser of its own) for the sign-in test.
    "playwright>=1.45",
    # A real Matrix homeserver (SQLite, loopback) for the matrix destination's tests.
    "matrix-synapse>=1.100",
]

setup(
    name="notifier",
    version="0.1.0",
    description="Notification fan-out for a fedmsg-style message bus",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    python_requires=">=3.11",
    packages=[
        *find_packages(include=["notifier", "notifier.*"]),
        "notifier.backends",
        "notifier.templates",
    ],
    package_dir={
        "notifier": "notifier",
        "notifier.backends": "backends",
        "notifier.templates": "templates",
    },
    package_data={
        "notifier.templates": ["*", "*/*", "*/*/*"],
        "notifier.clients.desktop": ["data/icons/hicolor/scalable/apps/*.svg"],
        "notifier.storage": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py"],
    },
    include_package_data=False,
    install_requires=[
        "pyzmq>=25",
        "click>=8.1",
        "cryptography>=41",
        "jinja2>=3.1",
        "orjson>=3.9",
        "SQLAlchemy>=2.0",
        "alembic>=1.12",
        "feedgen>=1.0",
        "prometheus_client>=0.17",
        # HTTP: the ASGI application and its server (h11, without optional C parts).
        "fastapi>=0.115",
        "uvicorn>=0.30",
        "h11>=0.16",
    ],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "notifier = notifier.cli.main:main",
            "notifier-logger = notifier.cli.logger:main",
            "notifier-tail = notifier.cli.tail:main",
            "notifier-desktop = notifier.clients.desktop.cli:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
    ],
)
