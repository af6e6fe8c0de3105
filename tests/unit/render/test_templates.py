"""Template lookup: defaults, per-app files, the site's templates_dir, errors that name files."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import pytest

from notifier.config import config_from_dict
from notifier.errors import ConfigError
from notifier.render import Renderer
from notifier.render.templates import PARTS, TemplateSet, app_key

from .conftest import BACKENDS, SECRET, render


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def site_renderer(tmp_path: Path) -> Renderer:
    config = config_from_dict({"templates_dir": str(tmp_path)})
    return Renderer(config, secret=SECRET, backends=BACKENDS)


def test_every_builtin_template_exists_and_compiles() -> None:
    templates = TemplateSet()
    for folder, parts in PARTS.items():
        for part in parts:
            assert templates.get(folder, part).filename.endswith(f"{folder}/{part}")


def test_every_default_template_renders_a_realistic_message(renderer: Renderer) -> None:
    email = render(renderer, "email")
    assert email.content["subject"] == ("[bodhi] alice commented on bodhi update "
                                        "python-requests-2.31.0-1.fc40 (karma: 1)")
    assert "Packages: python-requests" in email.content["text"]
    assert "Sent:     2024-05-01 10:40 UTC" in email.content["text"]
    assert "https://notify.example.org/unsubscribe/" in email.content["text"]
    assert ('<a href="https://bodhi.fedoraproject.org/updates/FEDORA-2024-1a2b3c4d5e">'
            in email.content["html"])

    line = render(renderer, "irc").content["line"]
    assert line.startswith("\x02bodhi\x02 alice commented on bodhi update")
    assert line.endswith("https://bodhi.fedoraproject.org/updates/FEDORA-2024-1a2b3c4d5e\x03")

    rss = render(renderer, "rss")
    assert rss.content["title"].startswith("[bodhi] alice commented")
    assert "<li>By: alice</li>" in rss.content["content"]

    desktop = render(renderer, "desktop")
    assert desktop.content["summary"].startswith("bodhi: alice commented on bodhi update")
    assert desktop.content["body"].startswith("<b>alice</b> in bodhi: python-requests")


def test_sparse_message_renders_everywhere(renderer: Renderer) -> None:
    # Only what every describer gives: no app, link, agent or packages.
    sparse = {"msg_id": "2024-1", "topic": "org.example.prod.ci.job.done", "summary": "job done"}
    for destination in ("email", "irc", "rss", "desktop"):
        n = renderer.render(destination, sparse, {"msg_id": "2024-1"}, {"name": "bob"}, [],
                            "bob")
        assert any("job done" in value for value in n.content.values()), destination
        assert "None" not in "".join(n.content.values())


def test_app_key_normalises_names() -> None:
    assert app_key("Bodhi") == "bodhi"
    assert app_key("Package Sources") == "package-sources"
    assert app_key("../../etc/passwd") == "etc-passwd"
    assert app_key("") == "" and app_key(None) == ""


def test_per_app_file_overrides_default_case_insensitively(tmp_path: Path) -> None:
    write(tmp_path, "email/Bodhi.subject.txt", "BODHI {{ message.summary }}")
    renderer = site_renderer(tmp_path)
    assert render(renderer, "email", app="bodhi").content["subject"].startswith("BODHI alice")
    assert render(renderer, "email", app="BODHI").content["subject"].startswith("BODHI alice")
    # Other apps and other parts keep the built-in default.
    assert render(renderer, "email", app="koji").content["subject"].startswith("[koji] alice")
    assert "Packages: python-requests" in render(renderer, "email").content["text"]


def test_site_default_beats_builtin_default(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt", "site: {{ message.summary }}")
    renderer = site_renderer(tmp_path)
    assert render(renderer, "irc", summary="hello").content["line"] == "site: hello"


def test_precedence_of_the_four_layers(tmp_path: Path) -> None:
    builtin, site = tmp_path / "builtin", tmp_path / "site"
    shutil.copytree(Path(str(files("notifier.templates"))), builtin)
    write(builtin, "rss/title.txt", "builtin default")
    write(site, "rss/title.txt", "site default")
    write(builtin, "rss/koji.title.txt", "builtin koji")
    write(builtin, "rss/bodhi.title.txt", "builtin bodhi")
    write(site, "rss/bodhi.title.txt", "site bodhi")

    def title(templates: TemplateSet, app: str) -> str:
        return templates.render(templates.get("rss", "title.txt", app), {})

    both = TemplateSet(str(site), builtin)
    assert title(both, "bodhi") == "site bodhi"          # site per-app beats all
    assert title(both, "koji") == "site default"         # site default beats builtin per-app
    assert title(both, "copr") == "site default"
    only_builtin = TemplateSet(None, builtin)
    assert title(only_builtin, "koji") == "builtin koji"  # builtin per-app beats builtin default
    assert title(only_builtin, "copr") == "builtin default"


def test_site_template_can_include_the_builtin_one_it_replaces(tmp_path: Path) -> None:
    write(tmp_path, "email/body.txt",
          '{% include "builtin:email/body.txt" %}\nExample Project notifications\n')
    text = render(site_renderer(tmp_path), "email").content["text"]
    assert "Packages: python-requests" in text
    assert text.rstrip().endswith("Example Project notifications")


def test_missing_templates_dir_is_a_config_error(tmp_path: Path) -> None:
    config = config_from_dict({"templates_dir": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="templates_dir.*no such directory"):
        Renderer(config, secret=SECRET, backends=BACKENDS)


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "email/subject.txt", "fine\n{% if message.app %}unclosed")
    with pytest.raises(ConfigError) as info:
        site_renderer(tmp_path)
    assert f"{tmp_path / 'email' / 'subject.txt'}, line 2" in str(info.value)


def test_undefined_name_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "desktop/summary.txt", "{{ message.summary }}\n{{ message.no_such_key }}")
    renderer = site_renderer(tmp_path)
    with pytest.raises(ConfigError) as info:
        render(renderer, "desktop")
    message = str(info.value)
    assert f"{tmp_path / 'desktop' / 'summary.txt'}, line 2" in message
    assert "no_such_key" in message


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "email/footer.txt", "ok\nok\n{{ nope }}")
    write(tmp_path, "email/body.txt", '{% include "email/footer.txt" %}')
    with pytest.raises(ConfigError, match=r"email/footer.txt, line 3"):
        render(site_renderer(tmp_path), "email")


def test_templates_cannot_change_the_data(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt", "{{ message.packages.append('evil') }}")
    with pytest.raises(ConfigError, match="irc/line.txt, line 1.*unsafe|SecurityError"):
        render(site_renderer(tmp_path), "irc", packages=["python-requests"])


def test_templates_cannot_reach_python_internals(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt", "{{ message.__class__.__mro__ }}")
    with pytest.raises(ConfigError, match="irc/line.txt, line 1"):
        render(site_renderer(tmp_path), "irc")


def test_unsubscribe_url_is_given_to_any_template_that_reads_it(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt", '{% include "irc/footer.txt" %}')
    write(tmp_path, "irc/footer.txt", "off: {{ unsubscribe_url }}")
    write(tmp_path, "rss/title.txt", '{% include message.app ~ "/x.txt" %}')
    write(tmp_path, "bodhi/x.txt", "off: {{ unsubscribe_url }}")
    renderer = site_renderer(tmp_path)
    line = render(renderer, "irc").content["line"]
    assert line.startswith("off: http://127.0.0.1:8080/unsubscribe/")
    # A computed include could read anything: it gets the link too.
    assert "/unsubscribe/" in render(renderer, "rss").content["title"]
    # No rule, no link.
    assert render(renderer, "irc", rules=()).content["line"] == "off:"


def test_templates_that_do_not_read_unsubscribe_url_are_told_so() -> None:
    templates = TemplateSet()
    assert not templates.reads(templates.get("irc", "line.txt"), "unsubscribe_url")
    assert templates.reads(templates.get("email", "body.txt"), "unsubscribe_url")
    assert templates.reads(templates.get("irc", "line.txt"), "message")


def test_syntax_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "email/parts/footer.txt", "ok\n{{ broken ")
    write(tmp_path, "email/body.txt", '{% include "email/parts/footer.txt" %}')
    with pytest.raises(ConfigError) as info:
        site_renderer(tmp_path)
    assert f"{tmp_path / 'email' / 'parts' / 'footer.txt'}, line 2" in str(info.value)


def test_optional_include_may_be_missing(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt", '{% include "irc/extra.txt" ignore missing %}done')
    assert render(site_renderer(tmp_path), "irc").content["line"] == "done"
