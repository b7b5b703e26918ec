import pytest

from meshplane.store import normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///mesh.db", "sqlite+pysqlite:///mesh.db"),
        ("sqlite+aiosqlite:///mesh.db", "sqlite+pysqlite:///mesh.db"),
        ("sqlite:////var/lib/mesh.db", "sqlite+pysqlite:////var/lib/mesh.db"),
        ("postgresql://u@db:5432/mesh", "postgresql+psycopg://u@db:5432/mesh"),
        ("postgres://u:pw@db/mesh", "postgresql+psycopg://u:pw@db/mesh"),
        ("postgresql+asyncpg://u@db/mesh", "postgresql+psycopg://u@db/mesh"),
    ],
)
def test_urls_become_the_store_driver_urls(given, expected):
    assert normalise_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url", ["mysql://u@db/mesh", "postgresql+psycopg2://u@db/mesh", "nonsense"]
)
def test_other_urls_are_refused(url):
    with pytest.raises(ValueError, match="URL"):
        normalise_url(url)
